"""Field-by-field body parsing with the shared tool-list cache: same result and same errors as `orjson.loads`,
one parsed list per distinct tools text, and `translate_tools` served by identity for it."""

from __future__ import annotations

import contextlib
import copy
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import bodyparse
from proxy.bodyparse import CACHE_SIZE, MIN_CACHED_BYTES, is_shared, parse_object
from proxy.errors import AnthropicError
from proxy.translate import tools as tools_module
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.tools import translate_tools
from proxy.translate.validate import validate_messages_request
from tests.proxy.strategies import requests as anthropic_requests
from tests.support import captured_requests

_TEXT = st.text(max_size=40)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)  # beyond 64 bits orjson gives a float: so must the field-wise parse
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=25,
)


def _tools(n: int, pad: int = MIN_CACHED_BYTES) -> list[dict]:
    return [
        {"name": f"tool{i}", "description": "x" * pad, "input_schema": {"type": "object"}} for i in range(n)
    ]


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(_TEXT, _JSON, max_size=6), st.booleans())
def test_same_result_as_orjson_for_any_object(body: dict, with_big_tools: bool) -> None:
    if with_big_tools:
        body = {**body, "tools": _tools(2)}
    raw = json.dumps(body).encode()  # json: orjson.dumps cannot write integers beyond 64 bits
    assert parse_object(raw) == orjson.loads(raw)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=200) | st.builds(lambda b: b'{"tools": [' + b + b"]}", st.binary(max_size=200)))
def test_same_verdict_and_message_as_orjson_for_any_bytes(raw: bytes) -> None:
    _assert_parses_like_orjson(raw)


def _assert_parses_like_orjson(raw: bytes) -> None:
    """parse_object gives orjson's value, or raises orjson's error with orjson's message."""
    try:
        expected: object = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        with pytest.raises(orjson.JSONDecodeError) as info:
            parse_object(raw)
        assert str(info.value) == str(exc)
    else:
        assert parse_object(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b'{"tools": ["\xff' + b"x" * 2000 + b'"]}',  # invalid UTF-8 inside the cached field
        b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}",  # deeper than either parser allows
        b'{"a": 1} trailing',
        b"[1, 2]",
    ],
)
def test_edge_cases_fail_or_parse_exactly_like_orjson(raw: bytes) -> None:
    try:
        expected = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        with pytest.raises(orjson.JSONDecodeError, match=str(exc).split(":")[0]):
            parse_object(raw)
    else:
        assert parse_object(raw) == expected


def test_one_shared_list_per_distinct_tools_text_and_bounded() -> None:
    first = parse_object(orjson.dumps({"model": "m", "tools": _tools(3)}))
    again = parse_object(orjson.dumps({"model": "other", "max_tokens": 5, "tools": _tools(3)}))
    assert again["tools"] is first["tools"] and is_shared(first["tools"])
    small = parse_object(orjson.dumps({"tools": _tools(1, pad=10)}))  # under the size floor: not cached
    assert not is_shared(small["tools"])
    for n in range(CACHE_SIZE + 1):  # push the first list out of the LRU cache
        parse_object(orjson.dumps({"tools": _tools(1, pad=MIN_CACHED_BYTES + n + 1)}))
    assert not is_shared(first["tools"])
    assert len(bodyparse._tools) == CACHE_SIZE


def _turn(text: str) -> dict:
    return {
        "role": "user",
        "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
    }


def test_resent_history_and_system_prompt_are_parsed_once() -> None:
    """A session's next turn repeats the system prompt and the history: its messages come back as the very
    objects parsed before (a tool result of ~150 bytes too: most of a history is short messages); tiny or new
    ones are parsed fresh."""
    bodyparse.clear_caches()
    system = [{"type": "text", "text": "You are Claude Code. " * 100}]
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_01ABCDEFGH",
        "content": "file written: src/app.py (12 lines)",
    }
    history = [
        _turn("a" * 3000),
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [result]},
    ]
    assert bodyparse.MIN_CACHED_MESSAGE_BYTES <= len(orjson.dumps(history[2])) < MIN_CACHED_BYTES
    first = parse_object(orjson.dumps({"model": "m", "system": system, "messages": history}))
    second = parse_object(
        orjson.dumps({"model": "m", "system": system, "messages": [*history, _turn("b" * 2000)]})
    )
    assert second["system"] is first["system"]
    assert second["messages"][0] is first["messages"][0]  # large: shared
    assert second["messages"][1] is not first["messages"][1]  # tiny: parsed again (cheaper than a lookup)
    assert second["messages"][2] is first["messages"][2]  # short, but resent: shared
    assert second["messages"] is not first["messages"]  # the list itself is the request's own
    assert second["messages"][3] == _turn("b" * 2000)
    assert not is_shared(second["messages"][0])  # only the tool list is recognised by identity downstream
    changed = parse_object(orjson.dumps({"messages": [_turn("a" * 2999 + "c")]}))  # same length, other text
    assert changed["messages"][0] == _turn("a" * 2999 + "c")


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.dictionaries(_TEXT, _JSON, max_size=4), max_size=5), st.integers(0, 2))
def test_messages_parse_exactly_like_orjson(messages: list, padding: int) -> None:
    """Messages large enough to be cached, twice (the second time from the cache), any content."""
    messages = [{**m, "pad": "x" * (MIN_CACHED_BYTES * padding)} for m in messages]
    raw = json.dumps({"model": "m", "messages": messages}).encode()
    assert parse_object(raw) == orjson.loads(raw)
    assert parse_object(raw) == orjson.loads(raw)


def test_messages_that_are_not_a_list_or_not_json_fail_exactly_like_orjson() -> None:
    big = "x" * MIN_CACHED_BYTES
    for raw in (
        b'{"messages": {"role": "' + big.encode() + b'"}}',
        b'{"messages": [{"content": "\xff' + big.encode() + b'"}]}',
        b'{"messages": [{"content": "' + big.encode() + b'"}, ]}',
    ):
        _assert_parses_like_orjson(raw)


@pytest.mark.plain_python
def test_shared_tool_list_is_translated_once_and_identically(monkeypatch) -> None:
    body = next(c.body for c in captured_requests() if len(orjson.dumps(c.body.get("tools"))) > 10_000)
    raw = orjson.dumps(body)
    expected = translate_tools(copy.deepcopy(body["tools"]), [])
    calls = []
    real = tools_module._translate_tools
    monkeypatch.setattr(tools_module, "_translate_tools", lambda t, d: calls.append(1) or real(t, d))
    tools_module._memo.clear()
    tools_module._by_identity.clear()
    results = [translate_tools(parse_object(raw)["tools"], []) for _ in range(3)]
    assert len(calls) == 1
    for result in results:
        assert result.functions == expected.functions and result.tool_names == expected.tool_names
        assert result.prompt_tokens == expected.prompt_tokens > 0
    assert results[0].functions is not results[1].functions  # fresh containers for every caller


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests, st.integers(0, 1), st.booleans())
def test_translation_never_writes_to_the_parsed_body(body: dict, pad: int, compact: bool) -> None:
    """Parsed pieces are shared between requests: validating and translating a request must leave every object
    of its parsed body exactly as parsed (large pieces padded in, so that they come from the caches; compact
    JSON with the system prompt after `messages`, so that a later parse takes the known-tail path)."""
    if pad and isinstance(body.get("messages"), list):
        body = {**{k: v for k, v in body.items() if k != "system"}, "system": "s" * MIN_CACHED_BYTES}
        body["messages"] = [
            {**m, "content": [{"type": "text", "text": "x" * MIN_CACHED_BYTES}, *m["content"]]}
            if isinstance(m, dict) and isinstance(m.get("content"), list)
            else m
            for m in body["messages"]
        ]
    separators = (",", ":") if compact else None
    raw = json.dumps(body, ensure_ascii=False, separators=separators).encode("utf-8", "surrogatepass")
    for _ in range(3):  # the third parse of compact JSON takes the known tail (kept from its second sighting)
        try:
            parsed = parse_object(raw)
        except orjson.JSONDecodeError:
            return
        pristine = orjson.loads(raw)
        with contextlib.suppress(AnthropicError):
            translate_request(validate_messages_request(parsed), "m", BackendProfile())
        assert parsed == pristine
