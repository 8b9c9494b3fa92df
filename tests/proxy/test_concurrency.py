"""The per-backend concurrency limit and its bounded queue: overflow is a 529 with retry-after, queued streams ping."""

from __future__ import annotations

import asyncio

import pytest

from proxy.app import STATE
from tests.proxy.fake_backend import Reply, chunks_from_blocks, messages_body, sse_events, wait_until

TIMEOUT = 15
ANSWER = chunks_from_blocks([{"type": "text", "text": "done"}])


async def post(proxy, stream: bool):
    response = await proxy.post("/v1/messages", messages_body(stream=stream))
    return response.status, response.headers, await response.read()


def completion_requests(backend) -> int:
    return sum(r.path.startswith("/v1/chat/completions") for r in backend.requests)


@pytest.mark.parametrize("overflow_stream", [False, True])
async def test_two_in_flight_two_queued_the_rest_get_529(backend, start_proxy, overflow_stream):
    busy = asyncio.Event()
    backend.reply = Reply(chunks=ANSWER, hold=busy)
    proxy = await start_proxy(upstream=backend.url, max_concurrency=2, max_queue=2)
    upstream = proxy.server.app[STATE].upstream
    admitted = [asyncio.create_task(post(proxy, stream=i % 2 == 1)) for i in range(4)]
    assert await wait_until(lambda: upstream.active == 2 and upstream.waiting == 2)

    rejected = await asyncio.wait_for(
        asyncio.gather(*(post(proxy, overflow_stream) for _ in range(3))), TIMEOUT
    )
    for status, headers, raw in rejected:
        assert status == 529
        assert int(headers["retry-after"]) > 0
        assert headers["request-id"]
        assert b'"overloaded_error"' in raw

    busy.set()
    results = await asyncio.wait_for(asyncio.gather(*admitted), TIMEOUT)
    assert [status for status, _, _ in results] == [200, 200, 200, 200]
    assert sse_events(results[1][2])[-1]["type"] == "message_stop"
    assert completion_requests(backend) == 4  # the rejected ones never reached the backend
    assert (upstream.active, upstream.waiting) == (0, 0)


async def test_queued_stream_gets_pings_while_waiting(backend, start_proxy):
    busy = asyncio.Event()
    backend.push(Reply(chunks=ANSWER, hold=busy))  # the first request holds the only slot until `busy` is set
    backend.reply = Reply(chunks=ANSWER)
    proxy = await start_proxy(upstream=backend.url, max_concurrency=1, max_queue=4, ping_interval=0.2)
    upstream = proxy.server.app[STATE].upstream
    holder = asyncio.create_task(post(proxy, stream=False))
    assert await wait_until(lambda: upstream.active == 1)
    queued = asyncio.create_task(post(proxy, stream=True))
    assert await wait_until(lambda: upstream.waiting == 1)
    await asyncio.sleep(0.5)  # queued long enough for a few ping intervals
    busy.set()
    status, _, raw = await asyncio.wait_for(queued, TIMEOUT)
    assert status == 200
    events = sse_events(raw)
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "content_block_delta")
    assert sum(e["type"] == "ping" for e in events[:first_delta]) >= 2  # message_start's, then queue pings
    assert events[-1]["type"] == "message_stop"
    assert (await asyncio.wait_for(holder, TIMEOUT))[0] == 200


async def test_zero_queue_rejects_as_soon_as_the_slots_are_full(backend, start_proxy):
    busy = asyncio.Event()
    backend.reply = Reply(chunks=ANSWER, hold=busy)
    proxy = await start_proxy(upstream=backend.url, max_concurrency=1, max_queue=0)
    upstream = proxy.server.app[STATE].upstream
    first = asyncio.create_task(post(proxy, stream=True))
    assert await wait_until(lambda: upstream.active == 1)
    status, headers, _ = await asyncio.wait_for(post(proxy, stream=True), TIMEOUT)
    assert status == 529 and headers["retry-after"]
    busy.set()
    assert (await asyncio.wait_for(first, TIMEOUT))[0] == 200
