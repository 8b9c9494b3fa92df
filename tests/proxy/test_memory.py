"""Memory held per open stream: once the backend call is sent, a stream keeps its serialized request and the
translator's small state, not the parsed and translated request (thousands of objects for a Claude Code turn),
however long the model takes to answer."""

from __future__ import annotations

import asyncio
import copy
import tracemalloc
from pathlib import Path

import orjson

import proxy
from proxy.bodyparse import MIN_CACHED_BYTES
from tests.proxy.fake_backend import Reply, chunk
from tests.support import captured_requests

STREAMS = 12


def _claude_code_turn() -> dict:
    body = copy.deepcopy(max(captured_requests(), key=lambda c: len(orjson.dumps(c.body))).body)
    body["stream"] = True
    return body


async def _open_stream(proxy, raw: bytes):
    """POST a stream and read until its first text delta; the response stays open (the backend stalls)."""
    response = await proxy.http.post(
        proxy.url + "/v1/messages", data=raw, headers={"content-type": "application/json"}
    )
    seen = b""
    while b"content_block_delta" not in seen:
        seen += await asyncio.wait_for(response.content.readany(), 10)
    return response


PROXY_CODE = str(Path(proxy.__file__).resolve().parent / "*")


def _proxy_blocks(snapshot: tracemalloc.Snapshot) -> int:
    """Memory blocks (objects, buffers) still allocated by the proxy's own code (not the fake backend, the
    client or aiohttp). Blocks, not bytes: orjson reserves more than it writes for its output, which tracemalloc
    counts but which never becomes resident."""
    proxy_only = snapshot.filter_traces([tracemalloc.Filter(True, PROXY_CODE)])
    return sum(stat.count for stat in proxy_only.statistics("filename"))


async def test_open_streams_hold_little_more_than_their_serialized_requests(backend, start_proxy) -> None:
    body = _claude_code_turn()
    raw = orjson.dumps(body)
    assert len(orjson.dumps(body["tools"])) > MIN_CACHED_BYTES and len(raw) > 40_000
    backend.reply = Reply(
        chunks=[
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Reading"}),
            chunk({"content": "."}),
        ],
        stall_after=2,
    )
    proxy = await start_proxy(upstream=backend.url, read_timeout=60, ping_interval=60)
    warm = await _open_stream(proxy, raw)  # fills the tool caches, which every later turn shares
    warm.close()
    tracemalloc.start()
    responses = []
    try:
        before = _proxy_blocks(tracemalloc.take_snapshot())
        responses = [await _open_stream(proxy, raw) for _ in range(STREAMS)]
        held = (_proxy_blocks(tracemalloc.take_snapshot()) - before) / STREAMS
    finally:
        tracemalloc.stop()
        for response in responses:
            response.close()
    # The serialized request, the translator's state, the response and its task: about 115 blocks. Keeping the
    # parsed and translated request alive for the stream's lifetime (as the proxy once did) held 668 here.
    assert held < 200, f"{held:.0f} blocks per open stream"
