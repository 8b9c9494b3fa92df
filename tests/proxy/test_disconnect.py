"""A client that goes away mid-stream makes the proxy drop the backend request at once, and nothing leaks."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestServer

from proxy.app import STATE, build_app
from proxy.config import Config
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks, messages_body, wait_until

TEXT = [{"type": "text", "text": "word " * 400}]
DISCONNECTS = 1000
BATCH = 50


@contextlib.asynccontextmanager
async def proxy_server(config: Config, *, handler_cancellation: bool):
    """The proxy app; with handler_cancellation=False the relay must notice the vanished client by itself."""
    server = TestServer(
        build_app(config), host="127.0.0.1", port=0, handler_cancellation=handler_cancellation
    )
    await server.start_server()
    try:
        async with ClientSession(timeout=ClientTimeout(total=20)) as http:
            yield server, http
    finally:
        await server.close()


async def open_and_drop(http: ClientSession, url: str, *, until: bytes = b"message_start") -> None:
    """Start a stream, read until `until` was seen, then drop the connection."""
    response = await http.post(url + "/v1/messages", json=messages_body(stream=True))
    seen = b""
    while until not in seen:
        data = await response.content.readany()
        assert data, "the stream ended before the client could leave"
        seen += data
    response.close()  # closes the TCP connection: the client is gone


@pytest.mark.parametrize("handler_cancellation", [True, False])
@pytest.mark.parametrize(
    ("reply", "until"),
    [
        (Reply(chunks=chunks_from_blocks(TEXT, piece=4), chunk_delay=0.05), b"text_delta"),
        (Reply(chunks=chunks_from_blocks(TEXT), stall_after=3), b"text_delta"),
        (Reply.never_answer(), b"ping"),
    ],
    ids=["slow-stream", "stalled-stream", "silent-prefill"],
)
async def test_disconnect_closes_the_backend_connection(reply, until, handler_cancellation):
    async with FakeBackend(reply) as backend:
        config = Config(upstream=backend.url, ping_interval=0.2)
        async with proxy_server(config, handler_cancellation=handler_cancellation) as (server, http):
            url = str(server.make_url("")).rstrip("/")
            await asyncio.wait_for(open_and_drop(http, url, until=until), 10)
            await asyncio.wait_for(backend.disconnected.wait(), 2)  # the backend saw its connection closed
            upstream = server.app[STATE].upstream
            assert await wait_until(lambda: upstream.active == 0 and upstream.waiting == 0, 2)


async def test_non_streaming_disconnect_cancels_the_backend_call():
    async with (
        FakeBackend(Reply.never_answer()) as backend,
        proxy_server(Config(upstream=backend.url), handler_cancellation=True) as (server, http),
    ):
        url = str(server.make_url("/v1/messages"))
        with contextlib.suppress(asyncio.TimeoutError):  # the client gives up after 0.3 s and disconnects
            await http.post(url, json=messages_body(), timeout=ClientTimeout(total=0.3))
        await asyncio.wait_for(backend.disconnected.wait(), 2)
        upstream = server.app[STATE].upstream
        assert await wait_until(lambda: upstream.active == 0, 2)


async def test_passthrough_disconnect_closes_the_backend_connection():
    stream = [b'event: message_start\ndata: {"type": "message_start"}\n\n']
    async with FakeBackend(Reply(chunks=stream, stall_after=1)) as backend:
        config = Config(upstream=backend.root_url, upstream_format="anthropic")
        async with proxy_server(config, handler_cancellation=False) as (server, http):
            url = str(server.make_url("")).rstrip("/")
            await asyncio.wait_for(open_and_drop(http, url, until=b"message_start"), 10)
            await asyncio.wait_for(backend.disconnected.wait(), 2)


async def test_thousand_disconnects_leak_no_tasks_or_connections():
    async with FakeBackend(Reply(chunks=chunks_from_blocks(TEXT), stall_after=3)) as backend:
        config = Config(upstream=backend.url, ping_interval=0.2, max_concurrency=BATCH)
        async with proxy_server(config, handler_cancellation=True) as (server, http):
            url = str(server.make_url("")).rstrip("/")
            upstream = server.app[STATE].upstream
            await open_and_drop(http, url, until=b"text_delta")  # warm up: sessions and pools exist now
            assert await wait_until(lambda: backend.disconnects == 1 and upstream.active == 0)
            await asyncio.sleep(0.1)
            baseline_tasks = len(asyncio.all_tasks())
            baseline_connections = backend.open_connections  # the probe's keep-alive connection

            for _ in range(DISCONNECTS // BATCH):
                batch = [open_and_drop(http, url, until=b"text_delta") for _ in range(BATCH)]
                await asyncio.wait_for(asyncio.gather(*batch), 60)

            assert await wait_until(lambda: backend.disconnects >= DISCONNECTS + 1)
            assert await wait_until(lambda: backend.open_connections <= baseline_connections), (
                backend.open_connections
            )
            assert await wait_until(lambda: upstream.active == 0 and upstream.waiting == 0)
            assert await wait_until(lambda: len(server.runner.server.connections) == 0)
            connector = upstream.session.connector
            assert await wait_until(lambda: not connector._acquired), len(connector._acquired)
            assert await wait_until(lambda: len(asyncio.all_tasks()) <= baseline_tasks), [
                t.get_coro() for t in asyncio.all_tasks()
            ][:5]
