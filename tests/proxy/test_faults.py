"""Backend faults through the real proxy app: what Claude Code (the official SDK, or raw HTTP) gets to see."""

from __future__ import annotations

import asyncio
import json
import logging

import anthropic
import pytest

from proxy import answers
from proxy.translate import backend_stream
from tests.proxy.fake_backend import (
    Reply,
    chunk,
    chunks_from_blocks,
    closed_port_url,
    messages_body,
    sse_events,
)

TIMEOUT = 15  # "does not hang" limit; every test finishes far sooner
WRITE_TOOL = {
    "name": "Write",
    "description": "Write a file",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"],
    },
}
LONG_TEXT = "The quick brown fox jumps over the lazy dog. " * 4


def text_chunks(text: str = LONG_TEXT) -> list[dict]:
    return chunks_from_blocks([{"type": "text", "text": text}])


def sdk_args() -> dict:
    return {k: v for k, v in messages_body().items() if k != "stream"}


async def stream_raw(proxy, body: dict | None = None) -> tuple[int, dict, list[dict]]:
    """POST a streaming request; (status, headers, parsed events or the error body as one item)."""

    async def go():
        response = await proxy.post("/v1/messages", body or messages_body(stream=True))
        raw = await response.read()
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status, response.headers, sse_events(raw)
        return response.status, response.headers, [await response.json()]

    return await asyncio.wait_for(go(), TIMEOUT)


def assert_envelope(body: dict, error_type: str) -> None:
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"].startswith("req_")


def terminal_error(events: list[dict]) -> dict:
    assert events[0]["type"] == "message_start"
    assert events[-1]["type"] == "error", [e["type"] for e in events]
    assert not any(e["type"] == "message_stop" for e in events)
    return events[-1]["error"]


@pytest.mark.parametrize("stream", [False, True])
async def test_refused_connection_is_529_with_request_id(start_proxy, stream):
    proxy = await start_proxy(upstream=closed_port_url(), probe_backend=False)
    status, headers, [body] = await stream_raw(proxy, messages_body(stream=stream))
    assert status == 529
    assert_envelope(body, "overloaded_error")
    assert "not reachable" in body["error"]["message"]
    assert headers["request-id"] == body["request_id"]


async def test_refused_connection_through_the_sdk(start_proxy):
    proxy = await start_proxy(upstream=closed_port_url(), probe_backend=False)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with proxy.sdk().messages.stream(**sdk_args()) as stream:
            await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    assert info.value.status_code == 529
    assert info.value.response.headers["request-id"]


async def test_silent_backend_streams_pings_then_a_timeout_error(backend, start_proxy):
    backend.reply = Reply.never_answer()
    proxy = await start_proxy(upstream=backend.url, read_timeout=1.0, ping_interval=0.2)
    status, headers, events = await stream_raw(proxy)
    assert status == 200 and headers["request-id"]
    # one ping comes with message_start; more than that means the silence itself was pinged through
    assert sum(e["type"] == "ping" for e in events) >= 2
    error = terminal_error(events)
    assert error["type"] == "timeout_error"
    assert "read_timeout" in error["message"]


async def test_silent_backend_non_streaming_gets_a_clean_504(backend, start_proxy):
    backend.reply = Reply.never_answer()
    proxy = await start_proxy(upstream=backend.url, read_timeout=0.5)
    status, headers, [body] = await stream_raw(proxy, messages_body(stream=False))
    assert status == 504
    assert_envelope(body, "timeout_error")


async def test_backend_stalling_mid_stream_ends_with_an_error_event(backend, start_proxy):
    backend.reply = Reply(chunks=text_chunks(), stall_after=3)
    proxy = await start_proxy(upstream=backend.url, read_timeout=0.8, ping_interval=0.2)
    status, _, events = await stream_raw(proxy)
    assert status == 200
    assert any(e["type"] == "content_block_delta" for e in events)
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "content_block_delta")
    assert sum(e["type"] == "ping" for e in events[first_delta:]) >= 2  # the stall itself was pinged through
    assert terminal_error(events)["type"] == "timeout_error"


async def test_stream_cut_mid_chunk_raises_in_the_sdk(backend, proxy):
    backend.reply = Reply(chunks=text_chunks(), cut_after=4)
    with pytest.raises(anthropic.APIError) as info:
        async with proxy.sdk().messages.stream(**sdk_args()) as stream:
            await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    assert "closed the stream early" in str(info.value)


async def test_stream_cut_mid_chunk_raw_events(backend, proxy):
    backend.reply = Reply(chunks=text_chunks(), cut_after=4)
    _, _, events = await stream_raw(proxy)
    assert any(e["type"] == "content_block_delta" for e in events)  # what arrived before the cut was relayed
    error = terminal_error(events)
    assert (error["type"], error["message"]) == ("api_error", "backend closed the stream early")


async def test_a_stream_cut_mid_answer_is_logged_as_a_warning(backend, proxy, caplog):
    """A stream that started (200) and then failed is a failed request: the operator sees it at warning level,
    like a 502 (it was logged at info level, among the successes)."""
    caplog.set_level(logging.INFO, logger="ccbench.proxy.requests")
    backend.reply = Reply(chunks=text_chunks(), cut_after=4)
    await stream_raw(proxy)
    backend.reply = Reply(chunks=text_chunks())
    await stream_raw(proxy)
    lines = [r for r in caplog.records if "POST /v1/messages" in r.getMessage()]
    assert [(r.levelno, " stream 200 api_error " in r.getMessage()) for r in lines] == [
        (logging.WARNING, True),
        (logging.INFO, False),
    ]


async def test_half_line_then_clean_eof_is_a_cut(backend, proxy):
    chunks = [*text_chunks()[:3], b'data: {"id": "chatcmpl-fake", "choi']
    backend.reply = Reply(chunks=chunks, done=False)
    _, _, events = await stream_raw(proxy)
    assert terminal_error(events)["message"] == "backend closed the stream early"


async def test_clean_eof_without_done_or_finish_reason_is_a_cut(backend, proxy):
    backend.reply = Reply(chunks=text_chunks()[:4], done=False)
    _, _, events = await stream_raw(proxy)
    assert any(e["type"] == "content_block_delta" for e in events)
    assert terminal_error(events)["message"] == "backend closed the stream early"


async def test_clean_eof_after_finish_reason_without_done_completes(backend, proxy):
    backend.reply = Reply(chunks=text_chunks("complete"), done=False)
    _, _, events = await stream_raw(proxy)
    assert events[-1]["type"] == "message_stop"
    assert (
        "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
        == "complete"
    )


async def test_one_garbage_chunk_among_good_ones_is_skipped(backend, proxy):
    good = text_chunks("Hello, world.")
    backend.reply = Reply(chunks=[*good[:2], b"data: {not json at all\n\n", b'data: {"trunc\n\n', *good[2:]])
    async with proxy.sdk().messages.stream(**sdk_args()) as stream:
        message = await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    assert message.content[0].text == "Hello, world."
    assert message.stop_reason == "end_turn"


async def test_an_invalid_utf8_byte_in_a_chunk_costs_one_character_not_the_chunk(backend, proxy):
    good = text_chunks("Hello, world.")
    broken = b'data: {"choices":[{"index":0,"delta":{"content":"caf\xc3 ok"},"finish_reason":null}]}\n\n'
    backend.reply = Reply(chunks=[*good[:2], broken, *good[2:]])
    async with proxy.sdk().messages.stream(**sdk_args()) as stream:
        message = await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    text = message.content[0].text
    assert "caf\ufffd ok" in text
    assert text.replace("caf\ufffd ok", "") == "Hello, world."


async def test_a_stream_of_garbage_fails_with_an_error_event(backend, proxy):
    backend.reply = Reply(chunks=[b"data: <html>\n\n", b"data: oops\n\n", b"data: {]\n\n", b"data: nope\n\n"])
    _, _, events = await stream_raw(proxy)
    error = terminal_error(events)
    assert error["type"] == "api_error" and "unparseable" in error["message"]


async def test_endless_bytes_without_an_event_end_fail_instead_of_filling_memory(backend, proxy, monkeypatch):
    """A backend that streams without ever ending a line (a binary file, a broken server) cannot make the proxy
    buffer without bound: past MAX_EVENT_BYTES the stream ends with an api_error and the backend is dropped."""
    monkeypatch.setattr(backend_stream, "MAX_EVENT_BYTES", 256 * 1024)
    garbage = [b"data: " + b"x" * 60_000] + [b"x" * 60_000] * 9  # 600 KB, no line break
    backend.reply = Reply(chunks=[*text_chunks("Hello")[:2], *garbage], stall_after=12, done=False)
    _, _, events = await stream_raw(proxy)
    error = terminal_error(events)
    assert error["type"] == "api_error"
    assert "without ending an event" in error["message"]
    assert await asyncio.wait_for(backend.disconnected.wait(), TIMEOUT)


async def test_endless_bytes_raise_in_the_sdk(backend, proxy, monkeypatch):
    monkeypatch.setattr(backend_stream, "MAX_EVENT_BYTES", 256 * 1024)
    garbage = [b"data: " + b"x" * 60_000] + [b"x" * 60_000] * 9
    backend.reply = Reply(chunks=[*text_chunks("Hello")[:2], *garbage], stall_after=12, done=False)
    with pytest.raises(anthropic.APIError, match="without ending an event"):
        async with proxy.sdk().messages.stream(**sdk_args()) as stream:
            await asyncio.wait_for(stream.get_final_message(), TIMEOUT)


async def test_a_large_tool_call_in_one_chunk_is_not_garbage(backend, proxy):
    """Some servers send a whole tool call in one chunk; a 3 MB Write is one long line, under MAX_EVENT_BYTES."""
    content = "y" * 3_000_000
    call = {"index": 0, "id": "call_1", "type": "function"}
    call["function"] = {"name": "Write", "arguments": json.dumps({"file_path": "/tmp/a", "content": content})}
    backend.reply = Reply(chunks=[chunk({"tool_calls": [call]}), chunk(finish_reason="tool_calls")])
    body = messages_body(stream=True, tools=[WRITE_TOOL])
    _, _, events = await stream_raw(proxy, body)
    assert events[-1]["type"] == "message_stop"
    sent = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(sent) == {"file_path": "/tmp/a", "content": content}


def big_completion(size: int) -> dict:
    return {
        "id": "c",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x" * size}, "finish_reason": "stop"}
        ],
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_over_the_size_limit_is_an_error_not_a_memory_hog(
    backend, proxy, monkeypatch, stream
):
    """A whole (non-streamed) answer is read into memory, so it is capped: one that announces more than
    MAX_ANSWER_BYTES (Content-Length) is refused unread; the streaming request gets it as a JSON answer too."""
    monkeypatch.setattr(answers, "MAX_ANSWER_BYTES", 64 * 1024)
    backend.reply = Reply(body=big_completion(200_000))
    status, _, [body] = await stream_raw(proxy, messages_body(stream=stream))
    assert status == 500
    assert_envelope(body, "api_error")
    assert body["error"]["message"] == "backend answer is larger than 65536 bytes; not read"


async def test_an_endless_json_answer_to_a_stream_is_cut_at_the_limit(backend, proxy, monkeypatch):
    """No Content-Length (chunked), so the limit is found while reading; what was read is dropped."""
    monkeypatch.setattr(answers, "MAX_ANSWER_BYTES", 64 * 1024)
    head = b'{"id": "c", "choices": [{"index": 0, "message": {"content": "'
    backend.reply = Reply(chunks=[head] + [b"x" * 16_384] * 40, headers={"Content-Type": "application/json"})
    status, _, [body] = await stream_raw(proxy)
    assert status == 500
    assert body["error"]["message"] == "backend answer is larger than 65536 bytes; not read"


async def test_a_huge_error_body_keeps_its_status_and_is_cut(backend, proxy, monkeypatch):
    monkeypatch.setattr(answers, "MAX_ERROR_BYTES", 1024)
    message = "overloaded " + "x" * 50_000
    backend.reply = Reply(status=503, body={"error": {"message": message}}, headers={"Retry-After": "7"})
    status, headers, [body] = await stream_raw(proxy, messages_body(stream=False))
    assert status == 529
    assert_envelope(body, "overloaded_error")
    assert headers["retry-after"] == "7"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("backend_status", "status", "error_type"),
    [(429, 429, "rate_limit_error"), (503, 529, "overloaded_error")],
)
async def test_backend_rate_limit_and_overload_keep_retry_after(
    backend, proxy, stream, backend_status, status, error_type
):
    backend.reply = Reply.error(backend_status, "busy", retry_after=5)
    got, headers, [body] = await stream_raw(proxy, messages_body(stream=stream))
    assert got == status
    assert headers["retry-after"] == "5"
    assert_envelope(body, error_type)


@pytest.mark.parametrize("stream", [False, True])
async def test_http_200_with_an_error_body(backend, proxy, stream):
    backend.reply = Reply(body={"error": {"message": "CUDA out of memory", "type": "server_error"}})
    status, _, [body] = await stream_raw(proxy, messages_body(stream=stream))
    assert status == 500
    assert_envelope(body, "api_error")
    assert "CUDA out of memory" in body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_http_200_context_overflow_body_keeps_status_400(backend, proxy, stream):
    error = {
        "code": 400,
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 40000,
        "n_ctx": 32768,
        "message": "the request exceeds the available context size, try increasing it",
    }
    backend.reply = Reply(body={"error": error})
    status, _, [body] = await stream_raw(proxy, messages_body(stream=stream))
    assert status == 400
    assert body["error"]["message"].startswith("prompt is too long: 40000 tokens > 32768 maximum")


async def test_http_200_non_json_non_streaming_is_malformed(backend, proxy):
    backend.reply = Reply(body=b"<html>gateway</html>")
    status, _, [body] = await stream_raw(proxy, messages_body())
    assert status == 500
    assert body["error"]["message"] == "backend returned a malformed response"


async def test_mid_stream_error_chunk_becomes_an_error_event(backend, proxy):
    failure = {"error": {"message": "slot 0 was cancelled", "type": "server_error", "code": 500}}
    backend.reply = Reply(chunks=[*text_chunks()[:3], failure])
    _, _, events = await stream_raw(proxy)
    error = terminal_error(events)
    assert error["type"] == "api_error" and "slot 0 was cancelled" in error["message"]


async def test_slow_prefill_gets_pings_then_the_answer(backend, start_proxy):
    backend.reply = Reply(chunks=text_chunks("late but fine"), prefill_delay=1.0)
    proxy = await start_proxy(upstream=backend.url, ping_interval=0.2)
    status, _, events = await stream_raw(proxy)
    assert status == 200
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "content_block_delta")
    assert sum(e["type"] == "ping" for e in events[:first_delta]) >= 2  # message_start's, then silence pings
    assert events[-1]["type"] == "message_stop"


async def test_late_429_after_the_commit_is_an_error_event(backend, start_proxy):
    late = Reply.error(429, "queue full", retry_after=2)
    late.prefill_delay = 0.6
    backend.reply = late
    proxy = await start_proxy(upstream=backend.url, ping_interval=0.2)
    status, _, events = await stream_raw(proxy)
    assert status == 200
    assert terminal_error(events)["type"] == "rate_limit_error"


async def test_slow_chunks_are_relayed_without_buffering(backend, proxy):
    backend.reply = Reply(chunks=text_chunks("one two three four"), chunk_delay=0.05)
    async with proxy.sdk().messages.stream(**sdk_args()) as stream:
        message = await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    assert message.content[0].text == "one two three four"


async def test_backend_ignoring_stream_true_still_gives_a_valid_stream(backend, proxy):
    completion = {
        "id": "c",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "whole answer"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }
    backend.reply = Reply(body=completion)
    async with proxy.sdk().messages.stream(**sdk_args()) as stream:
        message = await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    assert message.content[0].text == "whole answer"
    assert message.usage.output_tokens == 2


async def test_tool_call_stream_roundtrips(backend, proxy):
    backend.reply = Reply(
        chunks=chunks_from_blocks(
            [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "name": "Read", "input": {"file_path": "/tmp/a.py", "limit": 10}},
            ]
        )
    )
    tools = [
        {
            "name": "Read",
            "description": "read a file",
            "input_schema": {
                "type": "object",
                "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["file_path"],
            },
        }
    ]
    async with proxy.sdk().messages.stream(**sdk_args(), tools=tools) as stream:
        message = await asyncio.wait_for(stream.get_final_message(), TIMEOUT)
    assert message.stop_reason == "tool_use"
    assert message.content[-1].input == {"file_path": "/tmp/a.py", "limit": 10}


async def test_empty_answer_is_a_complete_message(backend, proxy):
    """Only a role chunk and a finish_reason: still a complete stream ending in message_stop."""
    backend.reply = Reply(chunks=[chunk({"role": "assistant"}), chunk({}, "stop")])
    status, _, events = await stream_raw(proxy)
    assert status == 200 and events[-1]["type"] == "message_stop"


async def test_late_200_error_body_after_the_commit_is_an_error_event(backend, start_proxy):
    backend.reply = Reply(body={"error": {"message": "model unloaded", "code": 503}}, prefill_delay=0.6)
    proxy = await start_proxy(upstream=backend.url, ping_interval=0.2)
    status, _, events = await stream_raw(proxy)
    assert status == 200
    error = terminal_error(events)
    assert error["type"] == "overloaded_error" and "model unloaded" in error["message"]


async def test_passthrough_cut_mid_stream_appends_an_error_event(backend, start_proxy):
    start = b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message",'
    start += (
        b'"role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":1}}}\n\n'
    )
    backend.reply = Reply(
        chunks=[start, b"event: ping\ndata: {}\n\n", b"event: content_block_start\n"], cut_after=2
    )
    proxy = await start_proxy(upstream=backend.root_url, upstream_format="anthropic")
    status, _, events = await stream_raw(proxy)
    assert status == 200
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "backend closed the stream early"},
    }
