"""`ccbench proxy` (not built yet)."""

import click


@click.command(name="proxy")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("ccbench proxy is not built yet")
