"""A backend may put anything in any field: the relay's whole per-chunk path (bytes -> parse_chunk ->
StreamTranslator -> SSE bytes) must still end every stream with `message_stop` or a clean `error` event.

The other stream tests feed well-formed chunks. These put arbitrary JSON values, integers beyond 64 bits
included (which msgspec hands over as Python ints and orjson refuses to write), into every field the translator
reads. That found usage counts of 2**64 and more ending a stream in "internal proxy error".
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxy.sse import encode_events
from proxy.translate.chunks import UNPARSEABLE, parse_chunk
from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.stream import StreamTranslator
from proxy.translate.tools import compact_json
from tests.proxy.strategies import json_values

READ = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}
HUGE = [2**63, 2**64, 2**70, -(2**64), 10**30]
anything = st.one_of(json_values, st.sampled_from(HUGE))
counts = st.dictionaries(
    st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"]),
    st.one_of(anything, st.fixed_dictionaries({"cached_tokens": anything})),
)
calls = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "index": anything,
            "id": st.one_of(st.sampled_from(["c1", "c2"]), anything),
            "type": anything,
            "function": st.fixed_dictionaries(
                {},
                optional={
                    "name": st.one_of(st.sampled_from(["Read", ""]), anything),
                    "arguments": st.one_of(st.sampled_from(['{"file_path":', '"/x"}', "{}"]), anything),
                },
            ),
        },
    ),
    max_size=3,
)
deltas = st.fixed_dictionaries(
    {},
    optional={
        "role": anything,
        "content": st.one_of(st.text(max_size=10), anything),
        "reasoning_content": anything,
        "tool_calls": st.one_of(calls, anything),
        "refusal": anything,
    },
)
choices = st.fixed_dictionaries(
    {"delta": st.one_of(deltas, anything)},
    optional={
        "index": st.one_of(st.just(0), anything),
        "finish_reason": st.one_of(st.sampled_from(["stop", "tool_calls", "length"]), anything),
        "stop_reason": anything,
    },
)
chunks = st.fixed_dictionaries(
    {"choices": st.one_of(st.lists(choices, max_size=2), anything)},
    optional={"usage": st.one_of(counts, anything), "stopping_word": anything, "timings": anything},
)


def as_backend_bytes(value: object) -> bytes:
    """What a server would send (the standard library writes integers of any size, unlike orjson)."""
    return json.dumps(value).encode()


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chunks, max_size=8))
def test_any_field_holding_anything_still_gives_a_finished_stream(stream):
    ctx = ResponseContext("claude", {"Read": "Read"}, {"Read": READ}, [], "msg_x", 10)
    translator = StreamTranslator(ctx)
    events = translator.start()
    for item in stream:
        parsed = parse_chunk(as_backend_bytes(item))
        if parsed is not UNPARSEABLE:
            events += translator.feed(parsed)
    events += translator.finish()
    encode_events(events)  # raised "Integer exceeds 64-bit range" for usage counts of 2**64 and more
    assert events[-1]["type"] in ("message_stop", "error")
    usage = events[-2]["usage"] if events[-1]["type"] == "message_stop" else {}
    assert all(isinstance(v, int) and 0 <= v < 2**53 for v in usage.values())


# a model writing an integer beyond 64 bits into a tool call's arguments
BIG_ARGUMENT = {"function": {"name": "Read", "arguments": f'{{"file_path": "/x", "offset": {2**70}}}'}}


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(counts, anything), st.one_of(deltas, anything))
@example({}, {"tool_calls": [{"id": "c1", **BIG_ARGUMENT}]})
def test_any_whole_answer_serialises(usage, message):
    ctx = ResponseContext("claude", {"Read": "Read"}, {"Read": READ}, [], "msg_x", 10)
    completion = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}
    try:
        answer = completion_to_message(json.loads(as_backend_bytes(completion)), ctx)
    except Exception as exc:  # the handler maps its own AnthropicError; nothing else may escape
        assert type(exc).__name__ == "AnthropicError", repr(exc)
        return
    # written as the handler writes it (json_response): a tool input may hold an integer beyond 64 bits, which
    # orjson refuses and the standard library writes (tests/proxy/test_big_integers.py); orjson.dumps here failed
    # whenever hypothesis generated such an argument
    assert json.loads(compact_json(answer)) == answer
    assert all(isinstance(v, int) and 0 <= v < 2**53 for v in answer["usage"].values())
