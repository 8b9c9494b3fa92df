"""A FakeBackend served from its own thread, for tests that drive the synchronous CLI (CliRunner) against it."""

from __future__ import annotations

import asyncio
import threading

from tests.proxy.fake_backend import FakeBackend


class BackendThread:
    """A FakeBackend on its own event loop, so the synchronous CLI can call it."""

    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeBackend:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.backend.start(), self.loop).result(10)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.backend.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
