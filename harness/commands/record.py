"""`ccbench record` (not built yet)."""

import click


@click.command(name="record")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("ccbench record is not built yet")
