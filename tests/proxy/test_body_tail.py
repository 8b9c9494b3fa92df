"""The known-tail path of body parsing: a body ending with the members after `messages` that an earlier body
ended with has only its head parsed. Whatever the head, the result (value, key order) or the error must be
exactly `orjson.loads`'s, and the tail's members must be the ones parsed before."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import bodyparse
from proxy.bodyparse import CACHE_SIZE, MIN_CACHED_BYTES, parse_object
from tests.proxy.test_bodyparse import _JSON, _TEXT, _assert_parses_like_orjson
from tests.support import captured_requests

TAIL_MEMBERS = {
    "system": [
        {"type": "text", "text": "You are Claude Code. " * 80, "cache_control": {"type": "ephemeral"}}
    ],
    "tools": [{"name": "Read", "description": "d" * 500, "input_schema": {"type": "object"}}],
    "metadata": {"user_id": "u1"},
    "max_tokens": 32000,
    "stream": True,
}


def _body(messages: list, **head: object) -> dict:
    return {"model": "m", **head, "messages": messages, **TAIL_MEMBERS}


def _turn(text: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


@pytest.fixture(autouse=True)
def _fresh_caches():
    bodyparse.clear_caches()
    yield
    bodyparse.clear_caches()


def _tail() -> bytes:
    """The known tail as Claude Code's bodies end: what a first body registers."""
    raw = orjson.dumps(_body([_turn("first")]))
    parse_object(orjson.dumps(_body([_turn("zeroth")])))  # a tail is kept from its second sighting on
    parse_object(raw)
    assert len(bodyparse._tails) == 1
    (tail,) = bodyparse._tails._values
    assert raw.endswith(tail) and tail.startswith(b',"system":')
    return tail


def test_the_next_turn_takes_the_tail_members_parsed_before() -> None:
    parse_object(orjson.dumps(_body([])))
    first = parse_object(orjson.dumps(_body([_turn("a")])))
    raw = orjson.dumps(_body([_turn("a"), {"role": "assistant", "content": "ok"}, _turn("b")]))
    second = parse_object(raw)
    assert second == orjson.loads(raw) and list(second) == list(orjson.loads(raw))
    # small members are parsed afresh on the field-by-field path: being the same objects shows the tail path
    assert second["metadata"] is first["metadata"] and second["tools"] is first["tools"]
    assert second["messages"] is not first["messages"]
    assert len(bodyparse._tails) == 1


def test_the_captured_sessions_turns_reuse_their_tail() -> None:
    """Real Claude Code 2.1.328 traffic: every turn after a session's first ends with that first turn's tail."""
    reused = 0
    for request in captured_requests():
        raw = orjson.dumps(request.body)
        before = bodyparse._tails.ending(raw)
        body = parse_object(raw)
        assert body == request.body and list(body) == list(request.body)
        reused += before is not None
    assert reused >= len(captured_requests()) - 10  # all but each of the five sessions' first two turns


def test_json_with_whitespace_between_members_keeps_the_field_by_field_path() -> None:
    spaced = orjson.dumps(_body([_turn("a")]), option=orjson.OPT_INDENT_2)
    for _ in range(3):
        assert parse_object(spaced) == orjson.loads(spaced)
    assert len(bodyparse._tails) == 0 and len(bodyparse._sightings) == 0


def test_a_tail_is_kept_from_its_second_sighting_and_a_changing_one_never() -> None:
    """A system prompt with a per-request nonce (as in first-party sessions' billing header) never repeats, so
    building its tail would be wasted on every request: only its first bytes are noted."""
    for n in range(5):
        nonce = [{"type": "text", "text": f"x-anthropic-billing-header: cch={n:05d};"}]
        parse_object(orjson.dumps({"model": "m", "messages": [], "system": nonce + TAIL_MEMBERS["system"]}))
    assert len(bodyparse._tails) == 0 and len(bodyparse._sightings) == 5
    parse_object(orjson.dumps(_body([_turn("a")])))
    assert len(bodyparse._tails) == 0
    parse_object(orjson.dumps(_body([_turn("b")])))
    assert len(bodyparse._tails) == 1


def test_small_tails_are_not_kept() -> None:
    parse_object(orjson.dumps({"model": "m", "messages": [_turn("a")], "max_tokens": 5, "stream": True}))
    assert len(bodyparse._tails) == 0


def test_the_tail_and_sighting_caches_are_bounded() -> None:
    for n in range(CACHE_SIZE + 5):
        for _ in range(2):
            parse_object(orjson.dumps({"messages": [], "system": "s" * (MIN_CACHED_BYTES + n)}))
    assert len(bodyparse._tails) == CACHE_SIZE
    for n in range(bodyparse.MAX_SIGHTINGS + 5):
        parse_object(orjson.dumps({"messages": [], "system": f"{n} " + "s" * MIN_CACHED_BYTES}))
    assert len(bodyparse._sightings) == bodyparse.MAX_SIGHTINGS


@pytest.mark.parametrize(
    "head",
    [
        b"{",  # no member before the tail: `{,` is no JSON
        b"",  # the tail alone
        b"  ",
        b'{"a":"',  # the tail would start inside a string
        b'{"a":["',
        b'{"a":[',  # inside an array
        b'{"a":{"b":1',  # inside a nested object
        b'{"a":1,',  # a comma too many
        b'{"a":1}',  # the object closed before the tail
        b'["x"',
        b'{"a":"\xff"',  # invalid UTF-8 in the head
        b'{"a":1} {"b":2',
    ],
)
def test_any_head_before_a_known_tail_parses_or_fails_exactly_like_orjson(head: bytes) -> None:
    _assert_parses_like_orjson(head + _tail())


def test_a_head_member_named_like_a_tail_member_gets_the_tails_value_in_its_own_place() -> None:
    raw = orjson.dumps({"stream": False, "model": "m", "messages": []})[:-1] + _tail()
    body = parse_object(raw)
    assert body == orjson.loads(raw) and list(body) == list(orjson.loads(raw))
    assert list(body)[0] == "stream" and body["stream"] is True


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_object_head_before_a_known_tail_parses_exactly_like_orjson(data: st.DataObject) -> None:
    tail = _tail()
    head = data.draw(
        st.dictionaries(_TEXT | st.sampled_from(list(TAIL_MEMBERS)), _JSON, min_size=1, max_size=5)
    )
    raw = json.dumps(head, separators=(",", ":")).encode()[:-1] + tail  # json: integers beyond 64 bits
    body = parse_object(raw)
    assert body == orjson.loads(raw) and list(body) == list(orjson.loads(raw))


_HEAD_BYTES = st.lists(
    st.sampled_from(
        [b"{", b"}", b"[", b"]", b'"', b"\\", b",", b":", b" ", b"1", b"a", b'"a"', b"\xff", b"null"]
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_HEAD_BYTES)
def test_any_bytes_before_a_known_tail_parse_or_fail_exactly_like_orjson(head: bytes) -> None:
    _assert_parses_like_orjson(head + _tail())


def _member(key: str, value: object) -> bytes:
    return json.dumps(key).encode() + b":" + json.dumps(value, separators=(",", ":")).encode()


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _JSON,
    _JSON | st.lists(_JSON, max_size=4),
    st.lists(st.tuples(st.sampled_from(["model", "messages", "x", "stream"]), _JSON), max_size=2),
)
def test_a_model_first_head_before_a_known_tail_parses_exactly_like_orjson(
    model: object, messages: object, more: list
) -> None:
    """Claude Code's own head (`model`, then `messages`) is split in one pass: whatever the values, repeated
    keys, further members or messages that are no list, the result and its key order are orjson's."""
    head = b"{" + b",".join(_member(k, v) for k, v in [("model", model), ("messages", messages), *more])
    raw = head + _tail()
    body = parse_object(raw)
    assert body == orjson.loads(raw) and list(body) == list(orjson.loads(raw))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _HEAD_BYTES, st.sampled_from([b'{"model":', b'{"model":"m","messages":', b'{"model":"m","messages":['])
)
def test_any_bytes_after_a_model_first_start_parse_or_fail_exactly_like_orjson(
    rest: bytes, start: bytes
) -> None:
    _assert_parses_like_orjson(start + rest + _tail())


def test_a_model_first_head_with_bad_utf8_in_a_message_fails_like_orjson() -> None:
    _assert_parses_like_orjson(b'{"model":"m","messages":[{"a":"\xff"}]' + _tail())
    _assert_parses_like_orjson(b'{"model":"\xff","messages":[]' + _tail())
