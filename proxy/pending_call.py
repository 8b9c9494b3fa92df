"""The backend call in flight: one task that waits for a slot and the backend's headers, so that the handler can
send pings meanwhile and cancel it when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from proxy.upstream import Upstream


class PendingCall:
    """The backend call in flight (wait for a slot, then send), as one task so that we can ping meanwhile.
    The slot is held until `close`, which also cancels or releases the backend response."""

    def __init__(self, upstream: Upstream, path: str, data: bytes, headers: Mapping[str, str]) -> None:
        self.upstream = upstream
        self.holds_slot = False
        self.task = asyncio.ensure_future(self._run(path, data, headers))
        self.response: aiohttp.ClientResponse | None = None

    async def _run(self, path: str, data: bytes, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        await self.upstream.acquire()
        self.holds_slot = True  # no await in between: a cancellation cannot strand the slot
        return await self.upstream.open("POST", path, data=data, headers=headers)

    async def wait(self, timeout: float) -> bool:
        """True once the backend's headers arrived (or the call failed); False after `timeout` seconds.
        (What `asyncio.wait({task}, timeout=…)` does, without its set bookkeeping: it runs on every request.)"""
        task = self.task
        if task.done():
            return True
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        timer = loop.call_later(timeout, wake)
        task.add_done_callback(wake)
        try:
            await waiter
        finally:
            timer.cancel()
            task.remove_done_callback(wake)
        return task.done()

    def result(self) -> aiohttp.ClientResponse:
        self.response = self.task.result()
        return self.response

    async def wait_with_ticks(
        self, tick: float, on_tick: Callable[[], Awaitable[None]]
    ) -> aiohttp.ClientResponse:
        """Wait for the headers however long it takes (the read timeout bounds it), calling `on_tick` meanwhile."""
        while not await self.wait(tick):
            await on_tick()
        return self.result()

    async def close(self, *, abort: bool) -> None:
        """Cancel a call still in flight, close (abort) or release the response, and free the slot."""
        try:
            if not self.task.done():
                self.task.cancel()
                await asyncio.wait({self.task})
            if self.response is None and not self.task.cancelled() and self.task.exception() is None:
                self.response = self.task.result()
            if self.response is not None:
                if abort:
                    self.response.close()
                else:
                    self.response.release()
        finally:
            if self.holds_slot:
                self.holds_slot = False
                self.upstream.release()
