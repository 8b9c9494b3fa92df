"""proxy.upstream against the fake backend: probing, error mapping, the slot limit, auth; and the pass-through relay."""

from __future__ import annotations

import asyncio
import contextlib

import anthropic
import pytest

from proxy.config import Config
from proxy.errors import AnthropicError
from proxy.relay import completion_as_chunk
from proxy.sse import encode_events
from proxy.upstream import Upstream, display_url, server_root
from tests.proxy.fake_backend import FakeBackend, Reply, closed_port_url, messages_body

TIMEOUT = 10


@contextlib.asynccontextmanager
async def upstream_for(url: str, **fields):
    upstream = Upstream(Config(upstream=url, **fields))
    try:
        yield upstream
    finally:
        await upstream.close()


def test_server_root_and_display_url_hide_credentials():
    assert server_root("http://h:8000/v1") == "http://h:8000"
    assert server_root("http://h:8000/v1/") == "http://h:8000"
    assert server_root("http://h:8082") == "http://h:8082"
    assert "secret" not in display_url("http://user:secret@h:8000/v1")
    assert display_url("http://user:secret@h:8000/v1").endswith("h:8000/v1")


async def test_probe_reads_vllm_max_model_len():
    async with (
        FakeBackend(max_model_len=8192, model="qwen") as backend,
        upstream_for(backend.url) as upstream,
    ):
        info = await upstream.probe()
    assert (info.reachable, info.kind, info.models, info.context_length) == (True, "vllm", ["qwen"], 8192)


async def test_probe_reads_llamacpp_props_at_the_server_root():
    async with (
        FakeBackend(max_model_len=4096, llamacpp=True, total_slots=3) as backend,
        upstream_for(backend.url) as upstream,
    ):
        info = await upstream.probe()
    assert (info.kind, info.context_length, info.slots) == ("llamacpp", 4096, 3)
    assert any(r.path == "/props" for r in backend.requests)


@pytest.mark.parametrize("nonsense", [0, -1, True, 2**40])
@pytest.mark.parametrize("llamacpp", [False, True])
async def test_probe_ignores_counts_that_cannot_be_real(nonsense, llamacpp):
    """A context length of 0, -1, true or 2**40 would make every request "too long" or clamp nothing sensibly,
    and a slot count like it would set ccbench run's concurrency: such a report counts as no report."""
    fake = FakeBackend(max_model_len=nonsense, llamacpp=llamacpp, total_slots=nonsense)
    async with fake as backend, upstream_for(backend.url) as upstream:
        info = await upstream.probe()
    assert info.kind == ("llamacpp" if llamacpp else "vllm")
    assert info.context_length is None and info.slots is None


async def test_probe_config_context_length_wins():
    async with (
        FakeBackend(max_model_len=8192) as backend,
        upstream_for(backend.url, context_length=2048) as upstream,
    ):
        assert (await upstream.probe()).context_length == 2048


async def test_probe_of_a_down_backend_never_raises():
    async with upstream_for(closed_port_url(), connect_timeout=2) as upstream:
        info = await asyncio.wait_for(upstream.probe(), TIMEOUT)
    assert info.reachable is False


async def test_probe_counts_a_server_without_models_route_as_reachable():
    """A team's own queue server may serve only /chat/completions: it is up, just not listing models."""
    from aiohttp import web

    from harness.reference import serve_on_loopback

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    async with serve_on_loopback(app) as url, upstream_for(url + "/v1") as upstream:
        info = await upstream.probe()
    assert (info.reachable, info.kind, info.models) == (True, "unknown", [])


async def test_upstream_key_is_sent_as_bearer():
    async with FakeBackend() as backend, upstream_for(backend.url, upstream_api_key="sk-up") as upstream:
        await upstream.post_json("/chat/completions", {"messages": []})
    assert backend.requests[-1].headers["Authorization"] == "Bearer sk-up"


async def test_post_json_refused_is_529():
    async with upstream_for(closed_port_url()) as upstream:
        with pytest.raises(AnthropicError) as info:
            await asyncio.wait_for(upstream.post_json("/chat/completions", {}), TIMEOUT)
    assert (info.value.status, info.value.error_type) == (529, "overloaded_error")
    assert "not reachable" in info.value.message


@pytest.mark.parametrize(
    ("reply", "status", "error_type", "retry_after"),
    [
        (Reply.error(429, retry_after=7), 429, "rate_limit_error", "7"),
        (Reply.error(503, retry_after=4), 529, "overloaded_error", "4"),
        (Reply(body={"error": {"message": "model crashed", "type": "server_error"}}), 500, "api_error", None),
        (Reply(body=b"<html>proxy error</html>"), 500, "api_error", None),
        (Reply(body=b"[1, 2]"), 500, "api_error", None),
    ],
    ids=["429", "503", "200-error-body", "200-not-json", "200-not-an-object"],
)
async def test_post_json_maps_backend_failures(reply, status, error_type, retry_after):
    async with FakeBackend(reply) as backend, upstream_for(backend.url) as upstream:
        with pytest.raises(AnthropicError) as info:
            await upstream.post_json("/chat/completions", {"messages": []})
    assert (info.value.status, info.value.error_type) == (status, error_type)
    assert info.value.headers.get("retry-after") == retry_after


async def test_post_json_200_with_context_error_body_is_prompt_too_long():
    body = {
        "error": {
            "code": 400,
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 5000,
            "n_ctx": 4096,
            "message": "the request exceeds the available context size, try increasing it",
        }
    }
    async with FakeBackend(Reply(body=body)) as backend, upstream_for(backend.url) as upstream:
        with pytest.raises(AnthropicError) as info:
            await upstream.post_json("/chat/completions", {"messages": []})
    assert info.value.status == 400
    assert info.value.message.startswith("prompt is too long: 5000 tokens > 4096 maximum")


async def test_post_json_silent_backend_times_out_as_504():
    async with (
        FakeBackend(Reply.never_answer()) as backend,
        upstream_for(backend.url, read_timeout=0.3) as upstream,
    ):
        with pytest.raises(AnthropicError) as info:
            await asyncio.wait_for(upstream.post_json("/chat/completions", {}), TIMEOUT)
    assert (info.value.status, info.value.error_type) == (504, "timeout_error")


async def test_get_json_returns_none_on_failure():
    async with FakeBackend() as backend, upstream_for(backend.url) as upstream:
        assert await upstream.get_json("/no-such-path") is None
        assert (await upstream.get_json("/models"))["data"][0]["id"] == "fake-model"


async def test_slot_limits_in_flight_and_queue():
    upstream = Upstream(Config(max_concurrency=2, max_queue=1))
    release = asyncio.Event()

    async def hold() -> None:
        async with upstream.slot():
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(3)]
    for _ in range(100):
        if upstream.active == 2 and upstream.waiting == 1:
            break
        await asyncio.sleep(0.01)
    assert (upstream.active, upstream.waiting, upstream.queued) == (2, 1, True)
    with pytest.raises(AnthropicError) as info:
        async with upstream.slot():
            pass
    assert (info.value.status, info.value.error_type) == (529, "overloaded_error")
    assert int(info.value.headers["retry-after"]) > 0
    release.set()
    await asyncio.wait_for(asyncio.gather(*holders), TIMEOUT)
    assert (upstream.active, upstream.waiting, upstream.queued) == (0, 0, False)


async def test_cancelled_waiter_leaves_the_queue():
    upstream = Upstream(Config(max_concurrency=1, max_queue=1))
    async with upstream.slot():
        waiter = asyncio.create_task(upstream.slot().__aenter__())
        await asyncio.sleep(0.05)
        assert upstream.waiting == 1
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        assert upstream.waiting == 0
    assert upstream.active == 0


def test_completion_as_chunk_keeps_tool_calls_and_usage():
    completion = {
        "id": "c1",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "ok",
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "Read", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    chunk = completion_as_chunk(completion)
    choice = chunk["choices"][0]
    assert choice["delta"]["tool_calls"][0]["index"] == 0
    assert choice["delta"]["content"] == "ok" and choice["finish_reason"] == "tool_calls"
    assert chunk["usage"]["prompt_tokens"] == 3
    with pytest.raises(AnthropicError):
        completion_as_chunk({"choices": []})


# -- pass-through (Anthropic-format backend) ---------------------------------------------------------------------
def anthropic_stream(text: str) -> bytes:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 0},
    }
    return encode_events(
        [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 2},
            },
            {"type": "message_stop"},
        ]
    )


async def test_passthrough_streams_bytes_and_forwards_anthropic_headers(start_proxy):
    async with FakeBackend(Reply(chunks=[anthropic_stream("passed through")], done=False)) as backend:
        proxy = await start_proxy(upstream=backend.root_url, upstream_format="anthropic")
        client = proxy.sdk(
            default_headers={
                "anthropic-beta": "interleaved-thinking-2025-05-14",
                "anthropic-version": "2023-06-01",
            }
        )
        async with client.messages.stream(
            **{k: v for k, v in messages_body().items() if k != "stream"}
        ) as stream:
            message = await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    assert message.content[0].text == "passed through"
    sent = backend.requests[-1]
    assert sent.path.startswith("/v1/messages")
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent.headers["anthropic-version"] == "2023-06-01"


async def test_passthrough_keeps_anthropic_errors_and_wraps_others(start_proxy):
    anthropic_error = {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
        "request_id": "req_upstream",
    }
    async with FakeBackend(Reply(status=429, body=anthropic_error, headers={"Retry-After": "3"})) as backend:
        proxy = await start_proxy(upstream=backend.root_url, upstream_format="anthropic")
        response = await proxy.post("/v1/messages", messages_body())
        assert response.status == 429
        assert await response.json() == anthropic_error
        assert response.headers["request-id"]
        backend.push(Reply(status=502, body=b"bad gateway"))
        response = await proxy.post("/v1/messages", messages_body())
        body = await response.json()
    assert response.status == 529
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"


async def test_passthrough_unreachable_is_529(start_proxy):
    proxy = await start_proxy(upstream=closed_port_url(""), upstream_format="anthropic", probe_backend=False)
    with pytest.raises(anthropic.APIStatusError) as info:
        await asyncio.wait_for(proxy.sdk().messages.create(**messages_body()), TIMEOUT)
    assert info.value.status_code == 529
