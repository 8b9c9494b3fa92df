"""`ccbench live` (not built yet)."""

import click


@click.command(name="live")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("ccbench live is not built yet")
