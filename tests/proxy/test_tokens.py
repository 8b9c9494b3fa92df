"""Token estimate, max_tokens clamping and backend-tokenizer counting (the estimate as the fallback), with the
properties of the shortcuts that skip the estimate. Through the app: test_context_fit.py."""

from __future__ import annotations

import asyncio
import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import tokens
from proxy.config import Config
from proxy.errors import AnthropicError
from proxy.tokens import (
    CONTEXT_MARGIN,
    MIN_OUTPUT_TOKENS,
    count_prompt_tokens,
    estimate_text_tokens,
    estimate_tokens,
    fit_max_tokens,
)
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.serialize import serialize_body
from proxy.translate.validate import validate_messages_request
from proxy.upstream import Upstream
from tests.proxy.fake_backend import FakeBackend, closed_port_url
from tests.proxy.strategies import requests as anthropic_requests
from tests.proxy.strategies import translated_as_received
from tests.support import captured_requests

BODY = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Read hello.py and fix the greeting."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "Read",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}},
            },
        }
    ],
}


def test_text_estimate_takes_the_larger_of_bytes_and_words() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("a" * 300) == 100  # one long "word": bytes / 3
    assert estimate_text_tokens("a " * 100) == 130  # short words: words * 1.3
    assert estimate_text_tokens("é" * 30) == 20  # UTF-8 bytes, not characters


def test_estimate_grows_with_messages_tools_and_images() -> None:
    base = estimate_tokens(BODY)
    more_text = {**BODY, "messages": [*BODY["messages"], {"role": "assistant", "content": "x" * 3000}]}
    assert estimate_tokens(more_text) >= base + 1000
    no_tools = {**BODY, "tools": []}
    assert estimate_tokens(no_tools) < base
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    with_image = {**BODY, "messages": [{"role": "user", "content": [image]}]}
    assert estimate_tokens(with_image) < 5000  # base64 bytes are not counted as text


def test_fit_clamps_to_the_room_left_in_the_context() -> None:
    assert fit_max_tokens(32000, 1000, 8192, None) == 8192 - 1000 - CONTEXT_MARGIN
    assert fit_max_tokens(100, 1000, 8192, None) == 100
    assert fit_max_tokens(32000, 1000, None, None) == 32000
    assert fit_max_tokens(32000, 1000, None, 2048) == 2048
    assert fit_max_tokens(32000, 1000, 8192, 2048) == 2048


def test_fit_refuses_a_prompt_that_leaves_no_useful_room_with_claude_codes_wording() -> None:
    limit = 8192 - CONTEXT_MARGIN - MIN_OUTPUT_TOKENS
    assert fit_max_tokens(32000, limit, 8192, None) == MIN_OUTPUT_TOKENS
    with pytest.raises(AnthropicError) as info:
        fit_max_tokens(32000, limit + 1, 8192, None)
    assert (info.value.status, info.value.error_type) == (400, "invalid_request_error")
    assert info.value.message == f"prompt is too long: {limit + 1} tokens > {limit} maximum"


async def test_llamacpp_count_uses_apply_template_then_tokenize() -> None:
    async with FakeBackend(llamacpp=True) as backend:
        upstream = Upstream(Config(upstream=backend.url))
        try:
            count, source = await count_prompt_tokens(upstream, BODY, "llamacpp")
        finally:
            await upstream.close()
    paths = [r.path for r in backend.requests]
    assert paths == ["/apply-template", "/tokenize"]
    assert backend.requests[0].body["tools"] == BODY["tools"]
    prompt = "".join(f"<|{m['role']}|>{m['content']}\n" for m in BODY["messages"])  # the fake's template
    assert backend.requests[1].body == {"content": prompt, "add_special": True}
    assert (count, source) == (-(-len(prompt) // 4), "llamacpp")


async def test_vllm_count_posts_messages_and_tools_to_tokenize() -> None:
    async with FakeBackend() as backend:
        upstream = Upstream(Config(upstream=backend.url))
        try:
            count, source = await count_prompt_tokens(upstream, BODY, "vllm")
        finally:
            await upstream.close()
    sent = backend.requests[-1]
    assert sent.path == "/tokenize"
    assert sent.body["model"] == "m" and sent.body["messages"] == BODY["messages"]
    assert sent.body["tools"] == BODY["tools"] and sent.body["add_generation_prompt"] is True
    assert source == "vllm" and count > 0


@pytest.mark.parametrize("count", [-1, True, "120", 2**60, None, 1.5])
async def test_a_nonsense_vllm_count_falls_back_to_the_estimate(count, caplog) -> None:
    """A count that cannot be a prompt's size (negative, a boolean, a string, 2**60) must not become the answer
    of count_tokens or the base of the max_tokens fit: the estimate is used instead."""
    async with FakeBackend() as backend:
        backend.tokenize_answer = {"count": count}
        upstream = Upstream(Config(upstream=backend.url))
        try:
            assert await count_prompt_tokens(upstream, BODY, "vllm") == (estimate_tokens(BODY), "estimate")
        finally:
            await upstream.close()
    assert "vllm tokenizer failed" in caplog.text


async def test_unknown_kind_or_failing_tokenizer_falls_back_to_the_estimate(caplog) -> None:
    upstream = Upstream(Config(upstream=closed_port_url()))
    try:
        assert await count_prompt_tokens(upstream, BODY, "openai") == (estimate_tokens(BODY), "estimate")
        assert await count_prompt_tokens(upstream, BODY, "llamacpp") == (estimate_tokens(BODY), "estimate")
    finally:
        await upstream.close()
    assert "llamacpp tokenizer failed" in caplog.text


async def test_a_failing_tokenizer_is_reported_once_per_backend(caplog) -> None:
    """A vLLM started without /tokenize fails on every request: one warning, then debug lines, not a warning per
    request."""
    upstream = Upstream(Config(upstream=closed_port_url()))
    try:
        for _ in range(3):
            assert (await count_prompt_tokens(upstream, BODY, "vllm"))[1] == "estimate"
    finally:
        await upstream.close()
    warnings = [
        r for r in caplog.records if "tokenizer failed" in r.getMessage() and r.levelname == "WARNING"
    ]
    assert len(warnings) == 1 and "said once" in warnings[0].getMessage()


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60) | st.text(
    alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2003\u3000ab", max_size=60
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _walked_estimate(body: dict) -> int:
    """The estimate by walking every string (the slow path the byte-size shortcut must never undercut)."""
    total = tokens.PROMPT_OVERHEAD
    for message in body.get("messages") or []:
        texts: list[str] = []
        images: list[int] = []
        tokens._strings(message, texts, images)
        total += tokens.MESSAGE_OVERHEAD + tokens.estimate_text_tokens("\n".join(texts))
        total += tokens.IMAGE_TOKENS * len(images)
    for tool in body.get("tools") or []:
        texts = []
        tokens._strings(tool, texts, [])
        total += tokens.TOOL_OVERHEAD + tokens.estimate_text_tokens(" ".join(texts))
    return total


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.fixed_dictionaries(
        {
            "messages": st.lists(st.dictionaries(_TEXT, _JSON, max_size=4), max_size=4),
            "tools": st.lists(st.dictionaries(_TEXT, _JSON, max_size=3), max_size=3),
        }
    )
)
def test_byte_size_shortcut_never_lowers_the_estimate(body: dict) -> None:
    assert tokens.estimate_tokens(body) >= _walked_estimate(body)


@pytest.mark.parametrize("captured", captured_requests(), ids=lambda c: c.id)
def test_memoised_tool_share_equals_the_full_estimate_on_real_requests(captured) -> None:
    """The handler passes the tools' share computed once per memoised tool translation; it must be exactly what
    estimating the translated body from scratch gives, on the first translation and on a memo hit alike."""
    for _ in range(2):  # the second translation is served from the memo
        translated = translate_request(
            validate_messages_request(copy.deepcopy(captured.body)), "m", BackendProfile()
        )
        assert translated.tool_tokens == tokens.estimate_tool_tokens(translated.body.get("tools") or [])
        assert estimate_tokens(translated.body, translated.tool_tokens) == estimate_tokens(translated.body)


_WIRE_JSON = st.recursive(  # what orjson.loads can hand us: integers fit 64 bits (bigger ones become floats)
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)
_BODIES = st.fixed_dictionaries(
    {
        "messages": st.lists(st.dictionaries(_TEXT, _WIRE_JSON, max_size=4), max_size=4),
        "tools": st.lists(st.dictionaries(_TEXT, _WIRE_JSON, max_size=3), max_size=3),
    }
)


def _parts(body: dict) -> int:
    return len(body["messages"]) + len(body["tools"])


@settings(max_examples=300, deadline=None, database=None)
@given(_BODIES)
def test_size_bound_is_never_below_the_estimate(body: dict) -> None:
    payload = orjson.dumps(body)
    if b'"image_url"' not in payload:
        assert tokens.estimate_bound(len(payload), _parts(body)) >= tokens.estimate_tokens(body)


def test_size_bound_holds_for_short_word_prose_where_words_dominate() -> None:
    body = {"messages": [{"role": "user", "content": "a " * 5000}], "tools": []}
    estimate = tokens.estimate_tokens(body)
    assert estimate > len(orjson.dumps(body)) / tokens.BYTES_PER_TOKEN  # the word rule wins here
    assert tokens.estimate_bound(len(orjson.dumps(body)), 1) >= estimate


@settings(max_examples=300, deadline=None, database=None)
@given(
    _BODIES,
    st.integers(1, 200_000),
    st.none() | st.integers(64, 300_000),
    st.none() | st.integers(1, 50_000),
)
def test_skipping_the_estimate_never_changes_max_tokens_or_the_verdict(
    body: dict, requested: int, context: int | None, cap: int | None
) -> None:
    """Whenever the size bound lets the handler skip the estimate, the estimate would not have been confirmed
    with the backend, would not have refused the prompt, and gives the same max_tokens."""
    serialized = serialize_body(body, "max_tokens")
    images = b'"image_url"' in serialized.rest  # these bodies are not translations: any image dict counts
    fitted = tokens.fit_without_estimate(len(serialized.rest), _parts(body), images, requested, context, cap)
    if fitted is None:
        return
    estimate = tokens.estimate_tokens(body)
    if context is not None:
        assert estimate <= tokens.CONFIRM_FRACTION * tokens.max_prompt_tokens(context, 1)
    assert fitted[0] == fit_max_tokens(requested, estimate, context, cap)


def test_claude_code_turns_on_a_large_context_skip_the_estimate_and_report_a_close_count() -> None:
    for captured in captured_requests():
        translated = translate_request(
            validate_messages_request(copy.deepcopy(captured.body)), "m", BackendProfile()
        )
        size = len(orjson.dumps(translated.body))
        parts = len(translated.body["messages"]) + len(translated.body.get("tools") or [])
        fitted = tokens.fit_without_estimate(size, parts, False, 32000, 131072, None)
        assert fitted is not None and fitted[0] == 32000
        estimate = estimate_tokens(translated.body)
        assert abs(fitted[1] - estimate) <= 0.02 * estimate
        # on a 32k context the same turn needs the estimate: max_tokens must shrink
        assert tokens.fit_without_estimate(size, parts, False, 32000, 32768, None) is None


def test_images_always_take_the_estimate() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = {"messages": [{"role": "user", "content": [image]}], "tools": []}
    assert tokens.has_image_parts(body["messages"])
    assert tokens.fit_without_estimate(len(orjson.dumps(body)), 1, True, 100, None, None) is None
    talk = {"role": "user", "content": [{"type": "text", "text": "image_url"}, {"type": "image_url"}]}
    assert tokens.has_image_parts([{"role": "user", "content": "image_url"}, talk])
    assert not tokens.has_image_parts(
        [{"role": "user", "content": "the image_url part"}, {"role": "assistant"}]
    )


_IMAGE_BLOCK = st.fixed_dictionaries(
    {
        "type": st.just("image"),
        "source": st.sampled_from(
            [
                {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                {"type": "url", "url": "https://example.com/a.png"},
                {"type": "file", "file_id": "file_1"},  # not supported: becomes a text note
            ]
        ),
    }
)
_TEXT_BLOCK = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(min_size=1, max_size=40)})
_USER_CONTENT = st.text(min_size=1, max_size=40) | st.lists(
    _TEXT_BLOCK | _IMAGE_BLOCK, min_size=1, max_size=4
)
_TOOL_TURNS = st.lists(_TEXT_BLOCK | _IMAGE_BLOCK, max_size=3).map(
    lambda result: [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": result}]},
    ]
)
_IMAGE_REQUESTS = st.one_of(
    anthropic_requests,  # anything, mostly invalid or without images
    st.builds(
        lambda first, tool_turns, last: {
            "model": "m",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": first}, *tool_turns, {"role": "user", "content": last}],
        },
        _USER_CONTENT,
        _TOOL_TURNS,
        _USER_CONTENT,
    ),
)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_IMAGE_REQUESTS)
def test_image_parts_are_found_wherever_the_estimate_counts_an_image(body: object) -> None:
    """On any translated request: `has_image_parts` is true exactly when the estimate's walk meets an image (so
    the size bound is only trusted where it holds), and without images the bound is above the estimate."""
    translated = translated_as_received(body)
    if translated is None:
        return
    messages = translated.body["messages"]
    walked: list[int] = []
    for message in messages:
        tokens._strings(message, [], walked)
    assert tokens.has_image_parts(messages) == bool(walked)
    if not walked:
        size = len(serialize_body(translated.body, "max_tokens", translated.tools_json).rest)
        parts = len(messages) + len(translated.body.get("tools") or [])
        assert tokens.estimate_bound(size, parts) >= estimate_tokens(translated.body)


async def test_a_tokenizer_that_does_not_answer_in_time_gives_way_to_the_estimate(
    monkeypatch, caplog
) -> None:
    """llama-server with every HTTP thread busy streaming answered /tokenize minutes later: the request waited
    that long before its first byte."""
    monkeypatch.setattr(tokens, "TOKENIZER_TIMEOUT", 0.2)
    async with FakeBackend() as backend:
        backend.tokenize_delay = 30.0
        upstream = Upstream(Config(upstream=backend.url))
        try:
            counted = await asyncio.wait_for(count_prompt_tokens(upstream, BODY, "vllm"), 10)
        finally:
            await upstream.close()
    assert counted == (estimate_tokens(BODY), "estimate")
    assert "vllm tokenizer failed (TimeoutError" in caplog.text
