"""`--upstream-format anthropic`: bodies go through untouched (model routed), anthropic-* headers are forwarded,
and the upstream's bytes come back unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.proxy.conftest import ProxyFactory

SSE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"up","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"h\\u00e9llo"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    b'"stop_sequence":null},"usage":{"output_tokens":2}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
MESSAGE = {
    "model": "up",
    "content": [{"type": "text", "text": "hi"}],
    "id": "msg_2",
    "type": "message",
    "role": "assistant",
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
# Odd spacing and key order on purpose: an unrouted body must arrive byte for byte.
RAW_BODY = (
    b'{"model":"claude-opus-5-5",  "max_tokens": 10, "context_management": {"edits": []},'
    b' "messages": [{"role": "user", "content": "hi"}], "stream": true}'
)
ANTHROPIC_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "context-management-2025-06-27,x-beta",
}


@dataclass
class AnthropicUpstream:
    """A minimal Anthropic-format server: records requests, streams SSE, answers JSON and count_tokens."""

    received: list[tuple[str, dict, bytes]] = field(default_factory=list)
    server: TestServer | None = None

    async def messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.received.append((request.path_qs, dict(request.headers), raw))
        if orjson.loads(raw).get("stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for cut in range(0, len(SSE), 97):  # odd-sized writes
                await response.write(SSE[cut : cut + 97])
            await response.write_eof()
            return response
        if orjson.loads(raw).get("model") == "fail":
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy upstream"}}
            return web.json_response(error, status=529)
        return web.json_response(MESSAGE)

    async def count_tokens(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append((request.path_qs, dict(request.headers), raw))
        return web.json_response({"input_tokens": 42})

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def upstream() -> AsyncIterator[AnthropicUpstream]:
    fake = AnthropicUpstream()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.messages)
    app.router.add_post("/v1/messages/count_tokens", fake.count_tokens)
    fake.server = TestServer(app, host="127.0.0.1", port=0)
    await fake.server.start_server()
    yield fake
    await fake.server.close()


async def test_stream_bytes_and_body_pass_through_untouched(upstream: AnthropicUpstream, start_proxy) -> None:
    proxy = await start_proxy(upstream=upstream.url, upstream_format="anthropic")
    headers = {**ANTHROPIC_HEADERS, "Content-Type": "application/json", "x-claude-code-session-id": "abc"}
    response = await proxy.http.post(proxy.url + "/v1/messages?beta=true", data=RAW_BODY, headers=headers)
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert response.headers["request-id"].startswith("req_")
    assert await response.read() == SSE
    path, sent_headers, raw = upstream.received[-1]
    assert path == "/v1/messages?beta=true"
    assert raw == RAW_BODY
    lowered = {k.lower(): v for k, v in sent_headers.items()}
    assert lowered["anthropic-version"] == "2023-06-01"
    assert lowered["anthropic-beta"] == ANTHROPIC_HEADERS["anthropic-beta"]


async def test_model_is_rewritten_per_routing_and_nothing_else(upstream, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(upstream=upstream.url, upstream_format="anthropic", tiers={"opus": "local-big"})
    message = await proxy.sdk().messages.create(
        model="claude-opus-5-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "hi"
    sent = orjson.loads(upstream.received[-1][2])
    assert sent == {"model": "local-big", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


async def test_sdk_stream_through_passthrough(upstream: AnthropicUpstream, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(upstream=upstream.url, upstream_format="anthropic")
    async with proxy.sdk().messages.stream(
        model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "héllo" and final.stop_reason == "end_turn"


async def test_count_tokens_passes_through(upstream: AnthropicUpstream, start_proxy: ProxyFactory) -> None:
    proxy = await start_proxy(upstream=upstream.url, upstream_format="anthropic")
    body = {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "hi"}]}
    response = await proxy.post("/v1/messages/count_tokens?beta=true", body, headers=ANTHROPIC_HEADERS)
    assert await response.json() == {"input_tokens": 42}
    assert upstream.received[-1][0] == "/v1/messages/count_tokens?beta=true"


async def test_anthropic_error_keeps_status_and_body(upstream: AnthropicUpstream, start_proxy) -> None:
    proxy = await start_proxy(upstream=upstream.url, upstream_format="anthropic")
    response = await proxy.post("/v1/messages", {"model": "fail", "max_tokens": 5, "messages": []})
    assert response.status == 529
    body = await response.json()
    assert body["error"] == {"type": "overloaded_error", "message": "busy upstream"}
    assert response.headers["request-id"].startswith("req_")


async def test_invalid_json_is_refused_before_the_upstream(upstream: AnthropicUpstream, start_proxy) -> None:
    proxy = await start_proxy(upstream=upstream.url, upstream_format="anthropic")
    response = await proxy.http.post(proxy.url + "/v1/messages", data=b"{nope")
    assert response.status == 400 and (await response.json())["error"]["type"] == "invalid_request_error"
    assert upstream.received == []
