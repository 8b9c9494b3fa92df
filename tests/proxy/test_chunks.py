"""Stream chunks parsed down to the fields the translator reads: the translator must act exactly as it does on
the full parse, for any chunk (well-formed, odd shapes, junk, errors, invalid UTF-8)."""

from __future__ import annotations

import random

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.translate.chunks import UNPARSEABLE, parse_chunk, parse_in_full
from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator

_TEXT = st.text(max_size=12)
_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_JUNK = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=6
)


def _mostly(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """`strategy` four times in five, junk otherwise: most chunks fit the reduced shapes, some break them."""
    return st.sampled_from([strategy] * 4 + [_JUNK]).flatmap(lambda chosen: chosen)


_ARGS = st.sampled_from(['{"file', '_path": "', "/a.py", '"}', "", '{"x": 1}', "garbage"])
_CALL = st.fixed_dictionaries(
    {},
    optional={
        "index": st.sampled_from([0, 1, None, "0"]),
        "id": st.sampled_from(["call_1", "call_2", "", None]),
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {}, optional={"name": st.sampled_from(["Read", "Write", ""]), "arguments": _ARGS | _JUNK}
        )
        | _JUNK,
    },
)
_DELTA = st.fixed_dictionaries(
    {},
    optional={
        "role": st.just("assistant"),
        "content": _mostly(st.sampled_from(["Hi", " there", "<think>", "x</think>", "", None])),
        "reasoning_content": _mostly(st.sampled_from(["hmm", None])),
        "reasoning": st.sampled_from(["r", None]),
        "refusal": st.sampled_from([None, "no"]),
        "tool_calls": _mostly(st.lists(_CALL, max_size=2)),
        "function_call": st.fixed_dictionaries({"name": st.just("Read"), "arguments": _ARGS}) | st.none(),
        "extra": _JUNK,
    },
)
_CHOICE = st.fixed_dictionaries(
    {},
    optional={
        "index": _mostly(st.sampled_from([0, 0, None, 1])),
        "delta": _mostly(_DELTA),
        "finish_reason": _mostly(st.sampled_from([None, None, "stop", "tool_calls", "length"])),
        "stop_reason": st.sampled_from([None, "END"]),
        "logprobs": _JUNK,
    },
)
_CHUNK = st.fixed_dictionaries(
    {"choices": _mostly(st.lists(_CHOICE, min_size=1, max_size=2))},
    optional={
        "id": _TEXT,
        "object": st.just("chat.completion.chunk"),
        "created": st.integers(0, 2**40),
        "model": _TEXT,
        "usage": st.fixed_dictionaries(
            {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6)}
        )
        | _JUNK,
        "error": st.fixed_dictionaries({"message": _TEXT, "code": st.sampled_from([429, 500, None])}),
        "stopping_word": st.sampled_from(["END", "x"]),
        "timings": st.fixed_dictionaries({}, optional={"stopping_word": st.sampled_from(["END", "x"])}),
    },
)
_BAD_UTF8 = b'{"choices":[{"delta":{"content":"caf\xc3 ok"}}]}'
_DATA = st.sampled_from(
    [_CHUNK.map(orjson.dumps)] * 6 + [_JUNK.map(orjson.dumps), st.binary(max_size=40), st.just(_BAD_UTF8)]
).flatmap(lambda chosen: chosen)


def _ctx() -> ResponseContext:
    schema = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}
    return ResponseContext(
        requested_model="m",
        tool_names={"Read": "Read", "Write": "Write"},
        tool_schemas={"Read": schema},
        stop_sequences=["END"],
        message_id="msg_x",
        input_tokens=10,
    )


def _translate(datas: list[bytes], parse) -> tuple:
    random.seed(7)  # ids made up for calls without one come from the PRNG
    translator = StreamTranslator(_ctx())
    events = translator.start()
    for data in datas:
        chunk = parse(data)
        if isinstance(chunk, dict):
            events += translator.feed(chunk)
    events += translator.finish()
    return events, translator.problems, translator.usage, translator.stop_reason


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_DATA, min_size=1, max_size=6))
def test_the_translator_acts_the_same_on_the_reduced_parse(datas: list[bytes]) -> None:
    for data in datas:
        assert (parse_chunk(data) is UNPARSEABLE) == (parse_in_full(data) is UNPARSEABLE)
        assert isinstance(parse_chunk(data), dict) == isinstance(parse_in_full(data), dict)
    assert _translate(datas, parse_chunk) == _translate(datas, parse_in_full)


def test_only_the_read_fields_are_kept() -> None:
    data = orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "system_fingerprint": "fp",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "hi"},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    )
    assert parse_chunk(data) == {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    with_error = orjson.dumps({"error": {"message": "boom", "code": 500}, "detail": "x"})
    assert parse_chunk(with_error) == orjson.loads(with_error)  # errors keep every field


def test_llama_cpp_timings_still_name_the_stop_sequence() -> None:
    """llama.cpp reports the matched stop word only in `timings` of its last chunk."""
    datas = [
        orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hello"}}]}),
        orjson.dumps(
            {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "timings": {"stopping_word": "END"},
            }
        ),
    ]
    reduced, full = _translate(datas, parse_chunk), _translate(datas, parse_in_full)
    assert reduced == full and reduced[3] == "stop_sequence"
