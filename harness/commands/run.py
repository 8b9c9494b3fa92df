"""`ccbench run` (not built yet)."""

import click


@click.command(name="run")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("ccbench run is not built yet")
