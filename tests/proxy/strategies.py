"""Hypothesis strategies shared by the proxy's property tests."""

from __future__ import annotations

import json

import orjson
from hypothesis import strategies as st

from proxy.bodyparse import parse_object
from proxy.errors import AnthropicError
from proxy.translate.request import (
    BackendProfile,
    TranslatedRequest,
    translate_request,
    validate_messages_request,
)

json_values = st.recursive(  # any JSON value (Python's ints, so beyond 64 bits too)
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


# -- Anthropic requests, valid and broken (the fuzz tests and the token-bound properties) --------------------------------------------------------------------------------------------------
leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
junk = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def usually(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """`strategy` nine times in ten, any JSON value otherwise: most requests get deep, some break anywhere."""
    return st.sampled_from([strategy] * 9 + [junk]).flatmap(lambda chosen: chosen)


short_text = st.text(max_size=120)
tool_id = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", max_size=24)
tool_name = st.text(max_size=80)  # empty and over-long names included
plain_tool_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)

text_block = st.fixed_dictionaries({"type": st.just("text"), "text": short_text})
blocks = usually(
    st.one_of(
        text_block,
        st.fixed_dictionaries(
            {
                "type": st.just("tool_use"),
                "id": tool_id,
                "name": plain_tool_name | tool_name,
                "input": usually(st.dictionaries(st.text(max_size=8), junk, max_size=3)),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("tool_result"),
                "tool_use_id": tool_id,
                "content": usually(short_text | st.lists(text_block, max_size=3)),
            },
            optional={"is_error": usually(st.booleans())},
        ),
        st.fixed_dictionaries({"type": st.just("thinking"), "thinking": short_text, "signature": short_text}),
        st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": short_text}),
        st.fixed_dictionaries(
            {
                "type": st.just("image"),
                "source": st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["base64", "url", "file", "bogus"]),
                        "media_type": st.sampled_from(["image/png", "image/jpeg", "text/plain"]),
                        "data": short_text,
                    }
                ),
            }
        ),
        st.fixed_dictionaries({"type": st.just("document"), "source": junk}),
        st.fixed_dictionaries({"type": st.text(max_size=20)}, optional={"text": junk, "content": junk}),
    )
)
message = st.fixed_dictionaries(
    {
        "role": usually(st.sampled_from(["user", "assistant", "system"])),
        "content": usually(short_text | st.lists(blocks, max_size=4)),
    }
)
tool = st.fixed_dictionaries(
    {"name": plain_tool_name | tool_name},
    optional={
        "description": short_text,
        "input_schema": usually(st.just({"type": "object", "properties": {"x": {"type": "string"}}})),
        "type": st.sampled_from(["custom", "web_search_20250305", "bash_20250124"]),
        "defer_loading": st.booleans(),
        "cache_control": junk,
    },
)
requests = st.fixed_dictionaries(
    {
        "model": usually(st.sampled_from(["claude-opus-5-5", "claude-haiku-5-5", "claude-local"])),
        "max_tokens": usually(st.integers(min_value=1, max_value=300_000)),
        "messages": usually(st.lists(message, min_size=1, max_size=5)),
    },
    optional={
        "stream": usually(st.booleans()),
        "system": usually(short_text | st.lists(text_block, max_size=3)),
        "tools": usually(st.lists(tool, max_size=3)),
        "tool_choice": usually(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}, optional={"name": tool_name}
            )
        ),
        "thinking": usually(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["enabled", "disabled", "adaptive"])},
                optional={"budget_tokens": st.integers()},
            )
        ),
        "temperature": usually(st.floats(0, 1)),
        "stop_sequences": usually(st.lists(short_text, max_size=3)),
        "metadata": junk,
        "context_management": junk,
        # a dict with its real keys, holding anything: `junk` alone almost never reaches `effort` or `format`
        "output_config": usually(
            st.fixed_dictionaries(
                {},
                optional={"effort": st.sampled_from(["low", "max", "bogus", [], {}]) | junk, "format": junk},
            )
        ),
        "top_p": junk,
        "top_k": junk,
        "service_tier": junk,
    },
)


def translated_as_received(body: object) -> TranslatedRequest | None:
    """A generated request translated the way the handler does it, for properties that call the translation
    directly instead of going through HTTP: parsed as off the wire (integers beyond 64 bits become floats, as
    orjson reads them), validated, translated. None when the proxy would answer it with a 400 instead (NaN or
    Infinity are not JSON; a request validation rejects)."""
    try:
        received = parse_object(json.dumps(body).encode())
    except orjson.JSONDecodeError:
        return None
    try:
        return translate_request(validate_messages_request(received), "m", BackendProfile())
    except AnthropicError:
        return None
