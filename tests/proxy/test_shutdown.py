"""Stopping `ccbench proxy` (SIGTERM) with requests in flight: a grace period, then a clear error, never a cut.

Before, a stream waiting on a long prefill got pings until aiohttp's shutdown timeout, then its connection was
closed without an event (curl: "transfer closed"), and the request log blamed the client (499 client_closed).
"""

from __future__ import annotations

import asyncio
import math
import signal

import aiohttp
import pytest

from proxy.shutdown import SHUTDOWN_MESSAGE, Shutdown
from tests.proxy.fake_backend import FakeBackend, Reply
from tests.proxy.fake_chunks import chunks_from_blocks
from tests.proxy.test_cli_proxy import STOP_TIMEOUT, read_banner, spawn

BODY = {"model": "claude-opus-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def silent() -> FakeBackend:
    """A backend that accepts every request and never answers (a prefill that outlasts the shutdown)."""
    async with FakeBackend(Reply(prefill_delay=math.inf)) as fake:
        yield fake


async def _proxy(
    backend: FakeBackend, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    process = await spawn("proxy", "--upstream", backend.url, "--port", "0", env=env)
    url, _ = await read_banner(process)
    return process, url


async def _stopped(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), STOP_TIMEOUT) == 0
    assert process.stderr is not None
    return (await process.stderr.read()).decode()


async def test_a_stream_in_flight_ends_with_an_overloaded_error_event(silent: FakeBackend) -> None:
    process, url = await _proxy(silent)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            response = await http.post(url + "/v1/messages", json={**BODY, "stream": True})
            assert response.status == 200
            first = await response.content.readuntil(b"\n\n")  # message_start: the stream is committed
            assert first.startswith(b"event: message_start")
            stopping = asyncio.ensure_future(_stopped(process))
            rest = await response.content.read()  # the body ends properly (chunked terminator), no cut
            log = await stopping
    finally:
        if process.returncode is None:
            process.kill()
    events = [block for block in rest.decode().split("\n\n") if block.strip()]
    assert events[-1].startswith("event: error\n")
    assert '"type":"overloaded_error"' in events[-1] and SHUTDOWN_MESSAGE in events[-1]
    assert all(e.startswith(("event: ping", "event: error")) for e in events)
    assert " stream 200 overloaded_error " in log and "499" not in log
    assert silent.disconnects >= 1  # the backend call was cancelled too


async def test_a_non_streaming_request_in_flight_gets_a_529(silent: FakeBackend) -> None:
    process, url = await _proxy(silent)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            answer = asyncio.ensure_future(http.post(url + "/v1/messages", json=BODY))
            while not any(r.path.endswith("/chat/completions") for r in silent.requests):
                await asyncio.sleep(0.02)
            log = await _stopped(process)
            response = await answer
            assert response.status == 529
            error = (await response.json())["error"]
    finally:
        if process.returncode is None:
            process.kill()
    assert error == {"type": "overloaded_error", "message": SHUTDOWN_MESSAGE}
    assert " 529 overloaded_error " in log


async def test_requests_that_finish_within_the_grace_period_are_not_stopped() -> None:
    shutdown = Shutdown()

    async def request(seconds: float) -> str:
        with shutdown.request():
            return await shutdown.guard(asyncio.sleep(seconds, "done"))

    quick = asyncio.ensure_future(request(0.05))
    await asyncio.sleep(0)
    await shutdown.drain(grace=5.0)  # returns as soon as nothing is in flight
    assert quick.result() == "done" and shutdown.stopping.is_set()
    with pytest.raises(Exception, match="shutting down"):
        await request(0.05)  # once stopping, nothing new waits on a backend


@pytest.mark.parametrize(("grace", "finished"), [("0.2", False), ("8", True)])
async def test_the_grace_period_is_a_setting(grace: str, finished: bool) -> None:
    """A 1.5 s answer in flight at SIGTERM: stopped with the shutdown error under a 0.2 s grace (the default 3 s
    would have let it finish), finished under an 8 s one (the default would have stopped a longer one)."""
    answer_text = [{"type": "text", "text": "finished"}]
    async with FakeBackend(Reply(chunks=chunks_from_blocks(answer_text), prefill_delay=1.5)) as slow:
        process, url = await _proxy(slow, env={"CCBENCH_SHUTDOWN_GRACE": grace})
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                answer = asyncio.ensure_future(http.post(url + "/v1/messages", json=BODY))
                while not any(r.path.endswith("/chat/completions") for r in slow.requests):
                    await asyncio.sleep(0.02)
                await _stopped(process)
                response = await answer
                body = await response.json()
        finally:
            if process.returncode is None:
                process.kill()
    if finished:
        assert response.status == 200 and body["content"] == answer_text
    else:
        assert response.status == 529 and body["error"]["message"] == SHUTDOWN_MESSAGE
