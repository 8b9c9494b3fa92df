"""Field-by-field body parsing with the shared tool-list cache: same result and same errors as `orjson.loads`,
one parsed list per distinct tools text, and `translate_tools` served by identity for it."""

from __future__ import annotations

import copy
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import bodyparse
from proxy.bodyparse import CACHE_SIZE, MIN_CACHED_BYTES, is_shared, parse_object
from proxy.translate import tools as tools_module
from proxy.translate.tools import translate_tools
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
    assert len(bodyparse._parsed) == CACHE_SIZE


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
