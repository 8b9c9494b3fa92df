"""`ccbench gate` (not built yet)."""

import click


@click.command(name="gate")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("ccbench gate is not built yet")
