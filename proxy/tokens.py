"""Prompt token counts: the backend's own tokenizer first, a deliberately conservative estimate last.

Claude Code drives its context meter and auto-compaction from `count_tokens` and from the usage we report, so an
undercount is the dangerous direction: the estimate here overcounts ordinary English and code on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from typing import TYPE_CHECKING, Any

import orjson

from proxy.errors import AnthropicError, prompt_too_long_message
from proxy.textmemo import TextMemo
from proxy.translate.knownmessages import known_message
from proxy.translate.outcome import MAX_TOKEN_COUNT, plausible_count

if TYPE_CHECKING:
    from proxy.upstream import Upstream

log = logging.getLogger("ccbench.proxy.tokens")

BYTES_PER_TOKEN = 3.0  # BPE tokenizers average 3.5-4.5 bytes per token on English and code
TOKENS_PER_WORD = 1.3  # and about 0.75 words per token on prose
MESSAGE_OVERHEAD = 8  # role markers, separators and the chat template's per-turn text
TOOL_OVERHEAD = 16  # the template's framing around each function definition
PROMPT_OVERHEAD = 16  # BOS, the generation prompt, the template's tool preamble
IMAGE_TOKENS = 1600  # Anthropic's ceiling for one image; local vision towers use fewer
CONTEXT_MARGIN = 64  # tokens kept free between prompt + max_tokens and the context length
MIN_OUTPUT_TOKENS = 256  # a prompt leaving less room than this for the answer is "too long"
CONFIRM_FRACTION = 0.8  # above this share of the context, confirm the estimate with the backend tokenizer
# Longest wait for the backend's tokenizer before the estimate is used: the call comes before the 200 is
# committed, so while it waits the client gets no byte at all. In a real session right after llama-server was
# killed and restarted, one request waited 350 s there until Claude Code gave up.
TOKENIZER_TIMEOUT = 5.0
# The estimate's usual excess over real tokenizers on Claude Code's traffic (1.29x llama.cpp's count, measured;
# larger vocabularies count fewer tokens still). Where no tokenizer can confirm it, the prompt is fitted as
# estimate / this, so that a prompt which fits is not refused on the estimate's safety margin.
ESTIMATE_OVERCOUNT = 1.25
TRUNCATES_SILENTLY = frozenset({"ollama"})  # cuts a prompt beyond its window without an error: never loosened


def _strings(value: Any, out: list[str], images: list[int]) -> None:
    """Every string in a JSON value (dict keys included: tool schemas are read by the model too)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        if value.get("type") == "image_url":  # base64 payloads are not text tokens
            images.append(1)
            return
        for key, item in value.items():
            out.append(key)
            _strings(item, out, images)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out, images)
    elif value is not None:
        out.append(str(value))


def estimate_text_tokens(text: str) -> int:
    """max(UTF-8 bytes / 3, words * 1.3): bytes dominate for code and JSON, words for plain prose."""
    if not text:
        return 0
    by_bytes = len(text.encode("utf-8")) / BYTES_PER_TOKEN
    by_words = len(text.split()) * TOKENS_PER_WORD
    return math.ceil(max(by_bytes, by_words))


# Bytes at which a word can start inside orjson's output, besides string starts (half its quotes): a space,
# the `:` `,` `[` before a number, boolean or null, the backslash of an escaped control character, and the
# lead byte of any non-ASCII whitespace (U+0085, U+00A0, U+1680, U+2000-U+205F, U+3000).
_WORD_BREAK_BYTES = b" :,[\\\xc2\xe1\xe2\xe3"


def _word_bound(serialized: bytes) -> int:
    """An upper bound on the words of the joined strings of a serialized JSON value, in two C passes."""
    breaks = len(serialized) - len(serialized.translate(None, _WORD_BREAK_BYTES))
    return serialized.count(b'"') // 2 + breaks + 1


def _bytes_estimate(serialized: bytes) -> int | None:
    """Its serialized size / 3, when even an upper bound on its words loses to that (never below the text-only
    estimate then: JSON only adds bytes); None when the words may count more, or with images."""
    by_bytes = len(serialized) / BYTES_PER_TOKEN
    if b'"image_url"' not in serialized and _word_bound(serialized) * TOKENS_PER_WORD <= by_bytes:
        return math.ceil(by_bytes)
    return None


def _part_tokens(part: Any, separator: str, serialized: bytes | None = None) -> int:
    """One message or tool (`serialized`: its orjson JSON, when the caller has it). Fast path: the size bound of
    `_bytes_estimate`; otherwise walk its strings."""
    if serialized is None:
        try:
            serialized = orjson.dumps(part)
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: the walk below still counts it
            serialized = b'"image_url"'
    quick = _bytes_estimate(serialized)
    if quick is not None:
        return quick
    texts: list[str] = []
    images: list[int] = []
    _strings(part, texts, images)
    return estimate_text_tokens(separator.join(texts)) + IMAGE_TOKENS * len(images)


# Messages' estimates by their JSON: a conversation's history is resent every turn, so only its new messages
# need the passes over their bytes (the estimate is a function of the JSON text alone). A short message is
# looked up only when the size bound does not settle it: a line-numbered tool result (`     1\tdef f():`) has
# spaces enough to need the walk over its strings, ~1.4 µs against ~0.2 µs for a lookup.
_message_estimates: TextMemo[int] = TextMemo(8192, 4 << 20)
MIN_MEMO_BYTES = 128  # below this, the size bound (two C passes) is tried before the memo


def _message_tokens(message: Any, serialized: bytes | None) -> int:
    if serialized is None:
        return _part_tokens(message, "\n")
    known = known_message(message)  # a message of a memoised turn keeps its estimate with it
    if known is not None and known.tokens is not None:
        return known.tokens
    tokens = _bytes_estimate(serialized) if len(serialized) < MIN_MEMO_BYTES else None
    if tokens is None:
        tokens = _message_estimates.get_or_make(serialized, _part_tokens, message, "\n", serialized)
    if known is not None:
        known.tokens = tokens
    return tokens


def estimate_tool_tokens(functions: list[dict]) -> int:
    """The tools' share of `estimate_tokens` (memoised with the tool translation: Claude Code resends the same
    30 KB of schemas every turn)."""
    return sum(TOOL_OVERHEAD + _part_tokens(tool, " ") for tool in functions)


def estimate_tokens(
    openai_body: dict, tool_tokens: int | None = None, message_json: list[bytes] | None = None
) -> int:
    """Conservative token count of an OpenAI chat request's prompt (messages + tools), template overhead included.
    `tool_tokens`: `estimate_tool_tokens(openai_body["tools"])`, and `message_json`: each message's orjson JSON,
    when the caller already has them (the handler serialised them for the request it sends)."""
    total = PROMPT_OVERHEAD
    messages = openai_body.get("messages") or []
    serialized: list[bytes] | list[None] = (
        message_json if message_json is not None else [None] * len(messages)
    )
    for message, json_text in zip(messages, serialized, strict=True):
        total += MESSAGE_OVERHEAD + _message_tokens(message, json_text)
    if tool_tokens is None:
        tool_tokens = estimate_tool_tokens(openai_body.get("tools") or [])
    return total + tool_tokens


# Per byte of a part's JSON, the most `_part_tokens` can count: bytes / 3, or 1.3 per word when every other byte
# starts a word.
_BOUND_PER_BYTE = max(1 / BYTES_PER_TOKEN, TOKENS_PER_WORD / 2)


def estimate_bound(serialized_size: int, parts: int) -> int:
    """An upper bound on `estimate_tokens` of a body without images, from the size of its JSON alone.

    Each part's estimate is at most 0.65 tokens per byte of its JSON plus 2 (a word needs a character and a
    separator; every string brings two quotes), the parts' JSON are disjoint pieces of the body's, and each part
    adds at most TOOL_OVERHEAD. Lets the handler skip the estimate when it cannot change max_tokens or the
    verdict on the prompt's size (tests/proxy/test_tokens.py holds it above the estimate)."""
    return PROMPT_OVERHEAD + (TOOL_OVERHEAD + 2) * parts + math.ceil(serialized_size * _BOUND_PER_BYTE)


def provisional_tokens(serialized_size: int) -> int:
    """The count message_start reports when the estimate was skipped: JSON bytes / 3 (what the per-part byte
    rule gives on Claude Code's traffic); the backend's real prompt count follows in message_delta."""
    return PROMPT_OVERHEAD + math.ceil(serialized_size / BYTES_PER_TOKEN)


def _allowed(requested: int, cap: int | None) -> int:
    """max_tokens as asked, within the configured cap (before the context is considered)."""
    return requested if cap is None else min(requested, cap)


def max_prompt_tokens(context_length: int, requested: int) -> int:
    """The largest prompt that still leaves the margin and a useful answer inside the context."""
    return context_length - CONTEXT_MARGIN - min(requested, MIN_OUTPUT_TOKENS)


def fit_max_tokens(requested: int, prompt_tokens: int, context_length: int | None, cap: int | None) -> int:
    """Clamp max_tokens to `context - prompt - margin` (and the configured cap); refuse a prompt that cannot fit.

    Claude Code asks for 32000 or 128000 whatever the model, which a local server rejects outright.
    """
    allowed = _allowed(requested, cap)
    if context_length is None:
        return max(1, allowed)
    limit = max_prompt_tokens(context_length, requested)
    if prompt_tokens > limit:
        raise AnthropicError.invalid_request(prompt_too_long_message(prompt_tokens, max(limit, 0)))
    return max(1, min(allowed, context_length - prompt_tokens - CONTEXT_MARGIN))


def has_image_parts(messages: list[dict]) -> bool:
    """Whether a translated message carries an image part: those count a fixed 1,600 tokens whatever their size,
    so no bound from the JSON's size holds for them. Read from the structure, not by scanning the JSON: images
    only travel as parts of a content list (text-only content is compacted to a string)."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    return True
    return False


def fit_without_estimate(
    size: int, parts: int, images: bool, requested: int, context_length: int | None, cap: int | None
) -> tuple[int, int] | None:
    """(max_tokens, provisional prompt count) when `estimate_bound` proves that the estimate could change neither
    max_tokens nor the verdict on the prompt's size, else None (then estimate, and maybe confirm, as usual).
    `size` is the length of the OpenAI body's JSON, `parts` its number of messages plus tools, `images` whether
    it holds an image part (see `has_image_parts`)."""
    if images:
        return None
    allowed = _allowed(requested, cap)
    if context_length is not None:
        bound = estimate_bound(size, parts)
        if bound > CONFIRM_FRACTION * max_prompt_tokens(context_length, 1):
            return None
        if bound > max_prompt_tokens(context_length, requested):
            return None
        if allowed > context_length - bound - CONTEXT_MARGIN:
            return None
    return max(1, allowed), provisional_tokens(size)


TEMPLATE_KEYS = ("tools", "tool_choice", "chat_template_kwargs")  # what changes the rendered prompt


def _template_request(openai_body: dict) -> dict:
    return {
        "messages": openai_body.get("messages") or [],
        **{k: openai_body[k] for k in TEMPLATE_KEYS if k in openai_body},
    }


async def _llamacpp_count(upstream: Upstream, openai_body: dict) -> int:
    """llama.cpp: render the chat template (tools included), then tokenize it the way the server will."""
    rendered = await upstream.post_json(upstream.root_url + "/apply-template", _template_request(openai_body))
    prompt = rendered.get("prompt")
    if not isinstance(prompt, str):
        raise ValueError("/apply-template answered without a prompt")
    tokens = await upstream.post_json(
        upstream.root_url + "/tokenize", {"content": prompt, "add_special": True}
    )
    if not isinstance(tokens.get("tokens"), list):
        raise ValueError("/tokenize answered without tokens")
    return len(tokens["tokens"])


async def _vllm_count(upstream: Upstream, openai_body: dict) -> int:
    """vLLM: its /tokenize takes the chat messages and tools and applies the template itself."""
    request = {
        "model": openai_body.get("model"),
        "add_generation_prompt": True,
        **_template_request(openai_body),
    }
    answer = await upstream.post_json(upstream.root_url + "/tokenize", request)
    count = plausible_count(answer.get("count"), MAX_TOKEN_COUNT, minimum=0)
    if count is None:
        raise ValueError(f"/tokenize answered without a usable count ({answer.get('count')!r})"[:120])
    return count


TOKENIZERS = {"llamacpp": _llamacpp_count, "vllm": _vllm_count}


async def count_prompt_tokens(
    upstream: Upstream, openai_body: dict, kind: str | None = None, tool_tokens: int | None = None
) -> tuple[int, str]:
    """(tokens, source): the backend's tokenizer when its kind has one, else (or when it fails) the estimate
    (`tool_tokens`: the tools' share of it, when the caller has it from the tool translation)."""
    tokenizer = TOKENIZERS.get(kind or "")
    if tokenizer is not None:
        try:
            async with asyncio.timeout(TOKENIZER_TIMEOUT):
                return await tokenizer(upstream, openai_body), kind or ""
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tokenizer failure must not fail the request: the estimate is safe
            _tokenizer_failed(upstream, kind or "", exc)
    return estimate_tokens(openai_body, tool_tokens), "estimate"


# backends whose tokenizer failure was logged at warning
_failed_tokenizers: weakref.WeakSet[Upstream] = weakref.WeakSet()


def _tokenizer_failed(upstream: Upstream, kind: str, exc: Exception) -> None:
    """Said once per backend at warning (a server whose /tokenize is off fails on every request), then at debug."""
    level = logging.DEBUG if upstream in _failed_tokenizers else logging.WARNING
    _failed_tokenizers.add(upstream)
    suffix = " (said once; later failures are logged at debug)" if level == logging.WARNING else ""
    log.log(level, "%s tokenizer failed (%s); using the estimate%s", kind, _describe(exc), suffix)


def fitting_count(count: int, source: str, kind: str) -> int:
    """The prompt size that max_tokens is fitted to and a prompt refused by: the count itself when a tokenizer
    made it, when the backend has a tokenizer (vLLM refuses prompt + max_tokens beyond its window, so its
    estimate stays on the safe side) or when the backend cuts a long prompt silently (Ollama: refusing is the
    only protection). Otherwise (LM Studio, SGLang, any OpenAI server) the estimate without its usual excess:
    with the plain estimate, Claude Code's ~12,600-token first request (estimated 16,500) was refused by a
    16,384-token server that takes it; a prompt that truly does not fit is refused by the backend itself, in
    words the proxy translates to the same "prompt is too long"."""
    if source != "estimate" or kind in TOKENIZERS or kind in TRUNCATES_SILENTLY:
        return count
    return math.ceil(count / ESTIMATE_OVERCOUNT)


def _describe(exc: Exception) -> str:
    return exc.message if isinstance(exc, AnthropicError) else f"{type(exc).__name__}: {exc}"
