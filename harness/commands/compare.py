"""`ccbench compare` (not built yet)."""

import click


@click.command(name="compare")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("ccbench compare is not built yet")
