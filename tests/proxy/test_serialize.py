"""The OpenAI body as sent is serialised in pieces (messages one by one, the memoised tool JSON spliced in):
the bytes must be exactly what serialising the whole body gives, and the estimate read from those pieces exactly
the estimate computed from the objects."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.bodyparse import parse_object
from proxy.tokens import estimate_tokens
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.serialize import serialize_body
from proxy.translate.validate import validate_messages_request
from tests.proxy.strategies import requests as anthropic_requests
from tests.proxy.strategies import translated_as_received
from tests.support import captured_requests

_TEXT = st.text(max_size=30)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=15,
)


def _whole(body: dict, leave_out: str) -> bytes:
    return orjson.dumps({k: v for k, v in body.items() if k != leave_out})


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.dictionaries(_TEXT, _JSON, max_size=4),
    st.none() | st.lists(st.dictionaries(_TEXT, _JSON, max_size=3), max_size=4),
    st.none() | st.lists(st.dictionaries(_TEXT, _JSON, max_size=3), max_size=3),
    st.sampled_from(["max_tokens", "max_completion_tokens", "messages", "tools"]),
)
def test_pieces_serialise_to_exactly_the_whole_body(
    extra: dict, messages: list | None, tools: list | None, leave_out: str
) -> None:
    body = dict(extra)
    if messages is not None:
        body["messages"] = messages
    if tools is not None:
        body["tools"] = tools
    body.setdefault("max_tokens", 100)
    tools_json = orjson.dumps(tools) if tools is not None else None
    serialized = serialize_body(body, leave_out, tools_json)
    assert serialized.rest == _whole(body, leave_out)
    assert serialized.size == len(serialized.rest)
    assert serialized.with_member(leave_out, 7) == orjson.dumps(
        {**{k: v for k, v in body.items() if k != leave_out}, leave_out: 7}
    )
    if messages is not None:
        assert serialized.message_json == [orjson.dumps(m) for m in messages]
        assert estimate_tokens(body, None, serialized.message_json) == estimate_tokens(body)
    else:
        assert serialized.message_json == []


@pytest.mark.parametrize("captured", captured_requests(), ids=lambda c: c.id)
def test_real_claude_code_turns_serialise_to_exactly_the_translated_body(captured) -> None:
    """Twice: the second translation takes the tool list (and its JSON) from the memo, the way the proxy's body
    parser shares it between requests."""
    raw = orjson.dumps(captured.body)
    for _ in range(2):
        body = validate_messages_request(parse_object(raw))
        translated = translate_request(copy.deepcopy(body), "m", BackendProfile())
        openai_body = translated.body
        if openai_body.get("tools"):
            assert translated.tools_json == orjson.dumps(openai_body["tools"])
        else:
            assert translated.tools_json is None
        serialized = serialize_body(openai_body, "max_tokens", translated.tools_json)
        assert serialized.rest == _whole(openai_body, "max_tokens")
        assert serialized.with_member("max_tokens", 32000) == orjson.dumps(
            {**{k: v for k, v in openai_body.items() if k != "max_tokens"}, "max_tokens": 32000}
        )
        assert estimate_tokens(
            openai_body, translated.tool_tokens, serialized.message_json
        ) == estimate_tokens(openai_body)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests)
def test_any_translated_request_serialises_to_exactly_its_body(body: object) -> None:
    """Generated requests (tools, tool_choice, thinking, images, broken parts): whatever the translation does to
    the tool list, the spliced tool JSON and the per-message pieces give exactly the body's own JSON."""
    translated = translated_as_received(body)
    if translated is None:
        return
    for key in ("max_tokens", "max_completion_tokens"):
        serialized = serialize_body(translated.body, key, translated.tools_json)
        assert serialized.rest == _whole(translated.body, key)


@pytest.mark.parametrize("body", [{}, {"max_tokens": 5}, {"messages": []}, {"tools": [], "max_tokens": 1}])
def test_a_member_joins_an_empty_or_nearly_empty_body_without_a_stray_comma(body: dict) -> None:
    serialized = serialize_body(body, "max_tokens", b"[]" if "tools" in body else None)
    rest = {k: v for k, v in body.items() if k != "max_tokens"}
    assert serialized.with_member("max_tokens", 9) == orjson.dumps({**rest, "max_tokens": 9})


def test_placeholder_text_in_a_member_is_data_not_a_splice_point() -> None:
    """A string holding the placeholder's visible text is escaped by orjson, so only the real splice points
    (written raw, as Fragments) are replaced."""
    body = {"user": "\x00messages \x00tools", "messages": [{"role": "user", "content": "hi"}], "tools": [1]}
    serialized = serialize_body(body, "max_tokens", orjson.dumps([1]))
    assert serialized.rest == _whole(body, "max_tokens")
