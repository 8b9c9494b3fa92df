"""Replay every real Claude Code 2.1.328 request through the proxy, streaming and not, with the official SDK.

The fake OpenAI backend answers each request with the assistant turn that answered it in the captured session
(converted to OpenAI chunks or a completion); the SDK must accumulate exactly that turn back, tool inputs included.
"""

from __future__ import annotations

import orjson
import pytest

from tests.proxy.conftest import RunningProxy
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks
from tests.support import CapturedRequest, captured_requests, scripted_turns

CAPTURED = captured_requests()
SDK_ARGUMENTS = ("model", "max_tokens", "messages")  # everything else goes through extra_body, untouched
HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "x-api-key", "authorization"}
FORBIDDEN_UPSTREAM = (b"cache_control", b"context_management", b"$schema")


def expected_turn(captured: CapturedRequest) -> list[dict]:
    return scripted_turns(captured.scenario)[captured.seq]


def sdk_call(captured: CapturedRequest) -> dict:
    """The captured body and headers as SDK arguments (the SDK sets `stream` itself)."""
    body = {k: v for k, v in captured.body.items() if k != "stream"}
    headers = {k: v for k, v in captured.headers.items() if k.lower() not in HOP_HEADERS}
    return {
        **{k: body.pop(k) for k in SDK_ARGUMENTS},
        "extra_body": body,
        "extra_headers": headers,
        "extra_query": {"beta": "true"},  # as Claude Code sends it
    }


def assert_same_turn(content: list, expected: list[dict], stop_reason: str | None) -> None:
    got = [block.model_dump(exclude_none=True) for block in content]
    assert [b["type"] for b in got] == [b["type"] for b in expected]
    for block, want in zip(got, expected, strict=True):
        if want["type"] == "text":
            assert block["text"] == want["text"]
        else:
            assert (block["name"], block["input"]) == (want["name"], want["input"])
            assert block["id"]
    uses_tools = any(b["type"] == "tool_use" for b in expected)
    assert stop_reason == ("tool_use" if uses_tools else "end_turn")


def assert_backend_request_is_clean(backend: FakeBackend) -> None:
    sent = [r for r in backend.requests if r.path.endswith("/chat/completions")]
    assert len(sent) == 1
    for forbidden in FORBIDDEN_UPSTREAM:
        assert forbidden not in sent[0].raw, forbidden
    roles = [m["role"] for m in sent[0].body["messages"]]
    assert roles.count("system") == 1 and roles[0] == "system"


@pytest.fixture
def scripted(backend: FakeBackend, request: pytest.FixtureRequest) -> CapturedRequest:
    captured: CapturedRequest = request.param
    backend.reply = Reply(chunks=chunks_from_blocks(expected_turn(captured)))
    return captured


@pytest.mark.parametrize("scripted", CAPTURED, ids=[c.id for c in CAPTURED], indirect=True)
async def test_streaming_replay(proxy: RunningProxy, backend: FakeBackend, scripted: CapturedRequest) -> None:
    assert scripted.path == "/v1/messages?beta=true" and scripted.body["stream"] is True
    async with proxy.sdk().beta.messages.stream(**sdk_call(scripted)) as stream:
        final = await stream.get_final_message()
        assert stream.response.url.path == "/v1/messages" and stream.response.url.params["beta"] == "true"
    assert final.model == scripted.body["model"]
    assert_same_turn(final.content, expected_turn(scripted), final.stop_reason)
    assert final.usage.output_tokens > 0
    assert_backend_request_is_clean(backend)


@pytest.mark.parametrize("scripted", CAPTURED, ids=[c.id for c in CAPTURED], indirect=True)
async def test_non_streaming_replay(
    proxy: RunningProxy, backend: FakeBackend, scripted: CapturedRequest
) -> None:
    message = await proxy.sdk().beta.messages.create(**sdk_call(scripted))
    assert message.type == "message" and message.role == "assistant"
    assert_same_turn(message.content, expected_turn(scripted), message.stop_reason)
    assert_backend_request_is_clean(backend)


@pytest.mark.parametrize("captured", CAPTURED[:1], ids=[CAPTURED[0].id])
async def test_raw_captured_bytes_and_headers(proxy: RunningProxy, backend: FakeBackend, captured) -> None:
    """The exact captured JSON text and header set, posted raw (no SDK reshaping), still streams correctly."""
    backend.reply = Reply(chunks=chunks_from_blocks(expected_turn(captured)))
    headers = {k: v for k, v in captured.headers.items() if k.lower() not in HOP_HEADERS}
    response = await proxy.http.post(
        proxy.url + captured.path, data=orjson.dumps(captured.body), headers=headers
    )
    assert response.status == 200 and response.content_type == "text/event-stream"
    text = await response.text()
    assert text.startswith("event: message_start\n") and text.rstrip().endswith('{"type":"message_stop"}')
    assert "[DONE]" not in text
