"""Option types shared by the subcommands."""

from __future__ import annotations

import math
from pathlib import Path

import click

from harness.cassette import check_writable, write_atomic
from proxy.config import MAX_CONTEXT


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan (which passes every range check) and, with no max, inf."""

    name = "finite float range"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class OutputFile(click.Path):
    """A file a command will write: refused at parse time when it cannot be (a folder, an empty name, a place
    where no file can be made), so a long replay or live session never ends in a write error. Missing folders
    are fine: `write_output_file` makes them."""

    name = "output file"

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, str) and not value.strip():
            self.fail("an empty name is not a file.", param, ctx)
        path = super().convert(value, param, ctx)
        try:
            check_writable(path)
        except OSError as exc:
            self.fail(cannot_write_message(path, exc), param, ctx)
        return path


def cannot_write_message(path: Path | str, exc: OSError) -> str:
    return f"cannot write {path}: {exc.strerror or exc}"


def cannot_write(path: Path | str, exc: OSError) -> click.UsageError:
    return click.UsageError(cannot_write_message(path, exc))


def write_output_file(path: Path | str, text: str) -> None:
    """Write a command's output file atomically, making missing folders; an OSError is a usage error (exit 2)."""
    try:
        write_atomic(Path(path), text)
    except OSError as exc:
        error = exc
        try:  # name the real cause: mkdir below a regular file says only "File exists"
            check_writable(Path(path))
        except OSError as cause:
            error = cause
        raise cannot_write(path, error) from None


# `ccbench run` and `ccbench live`: the in-process proxy's cap (config max_output_tokens)
max_output_tokens_option = click.option(
    "--max-output-tokens",
    type=click.IntRange(1, MAX_CONTEXT),
    default=None,
    help="Cap on max_tokens the proxy sends to an OpenAI-format backend (Claude Code asks for up to 32,000): "
    "bounds a turn of a model that never stops; recorded in the results.",
)


def check_output_cap(max_output_tokens: int | None, upstream_format: str) -> None:
    """The cap is the proxy's: an Anthropic-format backend gets the requests as they are, so refuse it there."""
    if max_output_tokens is not None and upstream_format == "anthropic":
        raise click.UsageError(
            "--max-output-tokens caps what the proxy sends to an OpenAI-format backend; --backend anthropic "
            "gets the requests as they are"
        )
