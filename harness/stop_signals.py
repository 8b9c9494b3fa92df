"""Stop a replay (`ccbench run`) or a live session cleanly on Ctrl-C or SIGTERM, so what finished is kept.

A replay against a CPU model runs for tens of minutes; without this, Ctrl-C (or a CI job's timeout, which
sends SIGTERM) threw every finished answer away. The first signal sets an event the replay watches: requests
in flight are cancelled and the scenarios that finished are scored and written. A second signal quits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopRequest:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    signum: int | None = None  # the first signal received

    def received(self, signum: int) -> None:
        if self.event.is_set():  # the second one: the user does not want to wait for a clean stop
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process stopped by it (130 for Ctrl-C)."""
        return 128 + (self.signum or signal.SIGINT)


@contextlib.asynccontextmanager
async def stop_on_signals() -> AsyncIterator[StopRequest]:
    """A StopRequest set by SIGINT/SIGTERM while inside; the previous handlers are back afterwards. Where the
    loop cannot take signal handlers (not the main thread), signals keep their usual effect."""
    stop = StopRequest()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in SIGNALS:
        try:
            loop.add_signal_handler(signum, stop.received, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(signum)
    try:
        yield stop
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event | None) -> T | None:
    """`work`'s result, or None when `stop` is set first: `work` is then cancelled and waited for, so what it
    holds open (requests, a Claude Code process) is closed before the caller writes what finished."""
    running = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future((stop or asyncio.Event()).wait())
    interrupted = False
    try:
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not running.done():
            interrupted = True
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    return None if interrupted else running.result()
