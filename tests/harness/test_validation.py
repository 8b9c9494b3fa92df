"""The SSE grammar checker catches each violation; good streams and messages pass."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.validation import (
    TimedEvent,
    check_count_tokens,
    check_json_response,
    check_stream,
    decode_sse,
)
from proxy.sse import encode_events

START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    },
}
PING = {"type": "ping"}


def text_block(index: int, *texts: str) -> list[dict]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}}
            for t in texts
        ),
        {"type": "content_block_stop", "index": index},
    ]


def tool_block(index: int, *fragments: str, name: str = "Read") -> list[dict]:
    start = {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": {}}
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": f},
            }
            for f in fragments
        ),
        {"type": "content_block_stop", "index": index},
    ]


def thinking_block(index: int, signature: bool = True) -> list[dict]:
    events = [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "thinking_delta", "thinking": "hmm"},
        },
    ]
    if signature:
        events.append(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "signature_delta", "signature": "sig"},
            }
        )
    return [*events, {"type": "content_block_stop", "index": index}]


def end(stop_reason: str = "end_turn") -> list[dict]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 7},
        },
        {"type": "message_stop"},
    ]


def check(events: list[dict]):
    return check_stream(decode_sse(encode_events(events)))


def test_good_tool_stream_is_valid_and_accumulates():
    result = check(
        [
            START,
            PING,
            *text_block(0, "Hi", " there"),
            *tool_block(1, "", '{"file_path":', ' "/a"}'),
            *end("tool_use"),
        ]
    )
    assert result.problems == []
    assert result.message["content"][0]["text"] == "Hi there"
    assert result.message["content"][1]["input"] == {"file_path": "/a"}
    assert result.message["stop_reason"] == "tool_use"
    assert result.output_tokens == 7


def test_thinking_then_text_is_valid():
    assert check([START, *thinking_block(0), *text_block(1, "ok"), *end()]).problems == []


def test_zero_blocks_is_legal():
    assert check([START, *end()]).problems == []


def _has(problems: list[str], fragment: str) -> bool:
    return any(fragment in p for p in problems)


@pytest.mark.parametrize(
    ("events", "fragment"),
    [
        ([*text_block(0, "x"), START, *end()], "before message_start"),
        ([PING, START, *end()], "ping before message_start"),
        ([START, START, *end()], "a second message_start"),
        ([START, *text_block(1, "x"), *end()], "expected 0"),
        ([START, *text_block(0, "x"), *text_block(2, "y"), *end()], "expected 1"),
        ([START, *text_block(0, "a")[:2], *text_block(1, "b"), *end()], "still open"),
        (
            [
                START,
                *text_block(0, "a")[:1],
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": "{}"},
                },
                {"type": "content_block_stop", "index": 0},
                *end(),
            ],
            "input_json_delta inside a text block",
        ),
        (
            [
                START,
                *tool_block(0)[:1],
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
                {"type": "content_block_stop", "index": 0},
                *end(),
            ],
            "text_delta inside a tool_use block",
        ),
        ([START, *thinking_block(0, signature=False), *end()], "without a signature_delta"),
        (
            [
                START,
                *thinking_block(0)[:3],
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "late"},
                },
                {"type": "content_block_stop", "index": 0},
                *end(),
            ],
            "after the thinking block's signature_delta",
        ),
        ([START, *text_block(0, "x"), {"type": "message_stop"}], "message_stop without a message_delta"),
        ([START, *text_block(0, "x"), *end()[:1], *end()], "more than one message_delta"),
        ([START, *text_block(0, "x"), *end(), PING], "after the end of the stream"),
        ([START, *text_block(0, "x"), *end()[:1]], "ended without message_stop"),
        ([START, *tool_block(0, '{"a": '), *end("tool_use")], "not valid JSON"),
        ([START, *tool_block(0, "[1, 2]"), *end("tool_use")], "not a JSON object"),
        (
            [
                START,
                *text_block(0, "x"),
                {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 1}},
                {"type": "message_stop"},
            ],
            "without a stop_reason",
        ),
        (
            [
                START,
                *text_block(0, "x"),
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
                {"type": "message_stop"},
            ],
            "'output_tokens' is a required property",
        ),
    ],
)
def test_each_grammar_violation_is_caught(events, fragment):
    problems = check(events).problems
    assert _has(problems, fragment), problems


def test_done_marker_bad_json_and_missing_event_line_are_frame_problems():
    good = encode_events([START, *text_block(0, "x"), *end()]).decode()
    assert _has(check_stream(decode_sse(good + "data: [DONE]\n\n")).problems, "[DONE]")
    frames = decode_sse(good)
    frames.insert(1, TimedEvent("content_block_delta", "{not json"))
    assert _has(check_stream(frames).problems, "not valid JSON")
    assert _has(check_stream([TimedEvent(None, json.dumps(START))]).problems, "no `event:` line")
    mismatched = [TimedEvent("ping", json.dumps(START))]
    assert _has(check_stream(mismatched).problems, "data.type")


def test_error_event_terminates_the_stream():
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    result = check([START, *text_block(0, "x"), error])
    assert result.problems == []
    assert result.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert _has(check([START, error, *end()]).problems, "after the end of the stream")


def test_timing_is_first_delta_and_message_stop():
    frames = decode_sse(encode_events([START, *text_block(0, "a", "b"), *end()]))
    for n, frame in enumerate(frames):
        frame.t = n / 10.0  # event n arrives at n * 100 ms
    result = check_stream(frames)
    assert result.ttft_ms == pytest.approx(200.0)  # event 2 is the first content_block_delta
    assert result.latency_ms == pytest.approx((len(frames) - 1) * 100.0)


def test_json_response_checks_message_and_error_envelope():
    message = {**START["message"], "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn"}
    assert check_json_response(200, json.dumps(message)).problems == []
    assert _has(
        check_json_response(200, json.dumps({**message, "stop_reason": None})).problems, "stop_reason"
    )
    assert _has(check_json_response(200, b"<html>").problems, "not JSON")
    envelope = {"type": "error", "error": {"type": "api_error", "message": "boom"}, "request_id": "req_1"}
    result = check_json_response(500, json.dumps(envelope))
    assert result.problems == [] and result.error["type"] == "api_error"
    assert check_json_response(500, json.dumps({"error": "boom"})).problems


def test_count_tokens_must_be_positive_int():
    assert check_count_tokens(200, b'{"input_tokens": 12}') == []
    assert check_count_tokens(200, b'{"input_tokens": 0}')
    assert check_count_tokens(200, b'{"input_tokens": "12"}')
    assert check_count_tokens(404, b'{"type": "error"}')


# -- property-based: any well-formed stream is valid and accumulates exactly; removing any structural event
# -- (message_start, a block start or stop, message_delta, message_stop) is always caught.

pieces = st.lists(st.text(max_size=6), min_size=1, max_size=4)
json_objects = st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3)
blocks = st.lists(
    st.one_of(
        st.tuples(st.just("text"), pieces),
        st.tuples(st.just("tool_use"), json_objects),
        st.tuples(st.just("thinking"), pieces),
    ),
    max_size=4,
)


def stream_events(spec: list[tuple[str, object]]) -> tuple[list[dict], list[dict]]:
    """Events for the given blocks (tool input split into 3 fragments) and the content they must give."""
    events, content = [START, PING], []
    for index, (kind, value) in enumerate(spec):
        if kind == "text":
            events += text_block(index, *value)
            content.append({"type": "text", "text": "".join(value)})
        elif kind == "tool_use":
            raw = json.dumps(value)
            third = max(1, len(raw) // 3)
            events += tool_block(index, raw[:third], raw[third : 2 * third], raw[2 * third :])
            content.append({"type": "tool_use", "id": f"toolu_{index}", "name": "Read", "input": value})
        else:
            thinking = "".join(value)
            events += [
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
                *(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": p},
                    }
                    for p in value
                ),
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": "s"},
                },
                {"type": "content_block_stop", "index": index},
            ]
            content.append({"type": "thinking", "thinking": thinking, "signature": "s"})
    return events + end(), content


STRUCTURAL = {"message_start", "content_block_start", "content_block_stop", "message_delta", "message_stop"}


@settings(max_examples=60, deadline=None)
@given(blocks, st.data())
def test_generated_streams_are_valid_and_any_structural_cut_is_caught(spec, data):
    events, content = stream_events(spec)
    result = check(events)
    assert result.problems == []
    assert result.message["content"] == content
    positions = [i for i, e in enumerate(events) if e["type"] in STRUCTURAL]
    cut = data.draw(st.sampled_from(positions))
    assert check(events[:cut] + events[cut + 1 :]).problems
