"""Progress of a replay: a live bar on a terminal, plain periodic lines everywhere else.

rich's bar draws nothing when stderr is not a terminal, so a run in CI (or under nohup) was silent until its
table, for as long as the backend took: against a CPU llama-server, tens of minutes. CI services that stop a job
after some minutes without output (CircleCI, Travis) would kill it, and a person reading the log cannot tell a
slow run from a stuck one. Off a terminal, a line says how far the run is at its start, at most every
`every` seconds while requests finish, and at its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

PLAIN_EVERY_SECONDS = 30.0


def elapsed_text(seconds: float) -> str:
    """`45s`, `4m05s`: durations in progress lines."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class PlainProgress:
    """Lines like `replayed 12/67 requests, 3 errors, 1m20s`, for logs."""

    console: Console
    total: int
    every: float = PLAIN_EVERY_SECONDS
    clock: Callable[[], float] = time.monotonic
    done: int = 0
    errors: int = 0
    _started: float = field(default=0.0, init=False)
    _last_line: float = field(default=0.0, init=False)

    def __enter__(self) -> PlainProgress:
        self._started = self._last_line = self.clock()
        self.console.print(f"replaying {self.total} requests…", highlight=False, soft_wrap=True)
        return self

    def advance(self, failed: bool) -> None:
        self.done += 1
        self.errors += failed
        now = self.clock()
        if self.done == self.total or now - self._last_line >= self.every:
            self._last_line = now
            self._line(now)

    def _line(self, now: float) -> None:
        errors = f"{self.errors} error{'s' if self.errors != 1 else ''}"
        spent = now - self._started
        line = f"replayed {self.done}/{self.total} requests, {errors}, {elapsed_text(spent)}"
        if 0 < self.done < self.total:  # at the pace so far; requests differ, so a rough figure
            line += f" (~{elapsed_text(spent / self.done * (self.total - self.done))} left)"
        self.console.print(line, highlight=False, soft_wrap=True)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None and self.done < self.total:  # stopped early (Ctrl-C, a usage error): say where
            self._line(self.clock())


class BarProgress:
    """rich's bar with the error count beside it, removed when the run ends (the table follows)."""

    def __init__(self, console: Console, total: int) -> None:
        self._progress = Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("replay", total=total, errors=0)
        self._errors = 0

    def __enter__(self) -> BarProgress:
        self._progress.__enter__()
        return self

    def advance(self, failed: bool) -> None:
        self._errors += failed
        self._progress.update(self._task, advance=1, errors=self._errors)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.__exit__(kind, exc, tb)


def replay_progress(console: Console, total: int) -> PlainProgress | BarProgress:
    """The bar on a terminal, plain lines otherwise."""
    return BarProgress(console, total) if console.is_terminal else PlainProgress(console, total)
