"""Real Claude Code requests with one field anywhere in them replaced by junk.

The structured fuzz (`test_fuzz.py`) builds requests from a grammar, so it reaches the fields the grammar names.
This starts from the captured 2.1.328 requests instead, whose 50 KB reach every field Claude Code really sends
(`context_management.edits`, `output_config.effort`, `cache_control`, `tool_reference` blocks, `defer_loading`
tools, nested tool schemas), and replaces one value at a random place with a value of another kind. The
request path (parse, validate, translate, serialise, estimate) must then either work or raise the
AnthropicError the handler answers with a 4xx; anything else would be our 500. An unhashable `effort`
(`[]`) was one such 500.
"""

from __future__ import annotations

import copy
import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.bodyparse import parse_object
from proxy.errors import AnthropicError
from proxy.requestbody import nesting_within_limits
from proxy.tokens import estimate_tokens
from proxy.translate.request import BackendProfile, translate_request, validate_messages_request
from proxy.translate.serialize import serialize_body
from tests.proxy.strategies import junk
from tests.support import captured_requests

BODIES = [request.body for request in captured_requests() if request.path.startswith("/v1/messages")]
PROFILES = [
    BackendProfile(thinking_style=style) for style in ("chat_template_kwargs", "reasoning_effort", "none")
]
REPLACEMENTS = st.one_of(
    st.sampled_from([[], {}, None, "", 0, -1, True, "x" * 300, [{}], {"type": []}]), junk
)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, as key/index paths (the root excluded)."""
    out: list[tuple] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out += paths(child, (*prefix, key))
    return out


PATHS = [paths(body) for body in BODIES]


def replaced(body: dict, path: tuple, value: object) -> dict:
    out = copy.deepcopy(body)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def translate_like_the_handler(raw: bytes, count_tokens: bool, profile: BackendProfile) -> None:
    """`read_json_object` then `_backend_call`'s pure steps, with the handler's own error mapping."""
    try:
        body = parse_object(raw)
    except orjson.JSONDecodeError:  # e.g. a NaN written as `NaN`: read_json_object answers 400
        raise AnthropicError.invalid_request("not JSON") from None
    assert isinstance(body, dict)
    with nesting_within_limits():
        body = validate_messages_request(body, count_tokens=count_tokens)
        translated = translate_request(body, "local-model", profile)
        key = "max_completion_tokens" if "max_completion_tokens" in translated.body else "max_tokens"
        serialized = serialize_body(translated.body, key, translated.tools_json)
        estimate_tokens(translated.body, translated.tool_tokens, serialized.message_json)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), REPLACEMENTS, st.booleans(), st.sampled_from(PROFILES), st.booleans())
def test_one_junk_field_anywhere_is_a_4xx_or_works(data, value, count_tokens, profile, compact):
    which = data.draw(st.integers(0, len(BODIES) - 1), label="request")
    path = data.draw(st.sampled_from(PATHS[which]), label="path")
    # compact as Claude Code writes it, so that a junk head meets the known tail of the unmutated requests
    separators = (",", ":") if compact else None
    raw = json.dumps(
        replaced(BODIES[which], path, value), separators=separators
    ).encode()  # json: ints > 64 bits
    try:
        translate_like_the_handler(raw, count_tokens, profile)
    except AnthropicError as exc:
        assert 400 <= exc.status < 500, exc


def test_the_unmutated_requests_translate():
    assert len(BODIES) >= 10
    for body in BODIES:
        for profile in PROFILES:
            translate_like_the_handler(orjson.dumps(body), False, profile)
