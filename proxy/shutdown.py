"""Stopping with requests in flight: they get a short grace period, then a clear error instead of a cut.

aiohttp waits `shutdown_timeout` for handlers, then cancels them and closes their connections: a stream waiting on
a long prefill was cut without an event (Claude Code saw a dropped connection) and logged as if the client had
left. Here the proxy waits up to `shutdown_grace` for what is in flight to finish, then asks the rest to stop: a
stream ends with a terminal `overloaded_error` event, a non-streaming request gets a 529, both saying the proxy
is shutting down, and the request log shows that error, not a client disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from proxy.errors import AnthropicError

log = logging.getLogger("ccbench.proxy")

# after the grace: for the requests told to stop to send their error and close (aiohttp then cancels what is left)
FAREWELL_TIME = 2.0
SHUTDOWN_MESSAGE = "the proxy is shutting down; retry once it is back"

T = TypeVar("T")


def shutting_down_error() -> AnthropicError:
    return AnthropicError(529, "overloaded_error", SHUTDOWN_MESSAGE)


class Shutdown:
    """The in-flight request count and the stop signal that every request's waits look at."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._grace_over = asyncio.Event()  # a second SIGINT / SIGTERM: stop waiting for the requests
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def request(self) -> Shutdown:
        """`with shutdown.request():` counts one request in flight while the block runs. The count needs no
        per-request state, so the Shutdown is its own context manager (cheaper than a generator-based one on
        every request)."""
        return self

    def __enter__(self) -> None:
        self._active += 1
        self._idle.clear()

    def __exit__(self, *exc_info: object) -> None:
        self._active -= 1
        if self._active == 0:
            self._idle.set()

    def check(self) -> None:
        """Raise the shutdown error once the proxy has asked requests to stop."""
        if self.stopping.is_set():
            raise shutting_down_error()

    async def guard(self, waiting: Awaitable[T]) -> T:
        """`waiting`'s result, or the shutdown error (cancelling it) if the proxy stops first."""
        task = asyncio.ensure_future(waiting)
        if self.stopping.is_set():
            task.cancel()
            raise shutting_down_error()
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise shutting_down_error()
        return task.result()

    async def drain(self, grace: float) -> None:
        """Let in-flight requests finish for up to `grace` seconds (or until `end_grace`), then tell the rest to
        stop."""
        if self._active:
            log.info(
                "shutting down: waiting up to %g s for %d %s in flight (signal again to stop now)",
                grace,
                self._active,
                "request" if self._active == 1 else "requests",
            )
        waits = [asyncio.ensure_future(self._idle.wait()), asyncio.ensure_future(self._grace_over.wait())]
        try:
            await asyncio.wait(waits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        self.stopping.set()

    def end_grace(self) -> None:
        """Stop waiting for requests in flight: they get the shutdown error now."""
        self._grace_over.set()


SHUTDOWN = web.AppKey("ccbench_shutdown", Shutdown)


def drain_on_shutdown(grace: float) -> Callable[[web.Application], Awaitable[None]]:
    """aiohttp's on_shutdown hook: runs after the listening sockets closed, before handlers are cancelled (the
    runner's `shutdown_timeout` must exceed `grace` + FAREWELL_TIME)."""

    async def drain(app: web.Application) -> None:
        await app[SHUTDOWN].drain(grace)

    return drain


def runner_shutdown_timeout(grace: float) -> float:
    """aiohttp's `shutdown_timeout` for a proxy whose requests get `grace` seconds."""
    return grace + FAREWELL_TIME
