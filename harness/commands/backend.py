"""`ccbench backend` (not built yet)."""

import click


@click.command(name="backend")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("ccbench backend is not built yet")
