"""Pieces of an Anthropic answer that streaming and non-streaming translation share.

stop_reason, stop_sequence, usage, reasoning text and thinking signatures are derived the same way in
both paths, so a streamed answer and its non-streamed retry describe the same message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from proxy.translate.jsonvalues import object_member

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
FINISH_TO_STOP = {
    "stop": "end_turn",
    "eos": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# Logged (once per proxy) when an answer stops at a max_tokens the proxy lowered. Seen with Claude Code 2.1.328:
# it asks the model to go on 3 times, then stops with an error naming the limit it asked for, not the cut.
LOWERED_CAP_PROBLEM = (
    "answer cut at a max_tokens the proxy lowered (--max-output-tokens, or the context left after the "
    "prompt): Claude Code asks to continue up to 3 times, then stops with \"API Error: Claude's response "
    'exceeded the N output token maximum", N being what it asked for; raise --max-output-tokens or the '
    "backend's context, or set CLAUDE_CODE_MAX_OUTPUT_TOKENS to the cap so Claude Code asks for what it gets"
)


def cut_by_proxy(stop_reason: str | None, lowered_max_tokens: bool) -> list[str]:
    """[LOWERED_CAP_PROBLEM] when the answer ran into a limit the proxy set below the client's, else []."""
    return [LOWERED_CAP_PROBLEM] if lowered_max_tokens and stop_reason == "max_tokens" else []


def fabricate_signature(thinking: str) -> str:
    """An opaque, deterministic signature: OpenAI servers have none, Claude Code only echoes it back."""
    return "ccbench_" + hashlib.sha256(thinking.encode("utf-8")).hexdigest()[:48]


def reasoning_of(message: dict) -> str:
    """Reasoning text under either name servers use (`reasoning_content`: DeepSeek/llama.cpp; `reasoning`: vLLM)."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def content_text(content: object) -> str:
    """`content` as text: a string, or a list of text parts (some servers answer with parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def split_think_tags(text: str) -> tuple[str, str]:
    """(thinking, answer) for content that opens with `<think>` (llama.cpp --reasoning-format none).

    An unclosed tag means the whole content is reasoning (generation stopped while thinking).
    """
    stripped = text.lstrip()
    if not stripped.startswith(THINK_OPEN):
        return "", text
    inner = stripped[len(THINK_OPEN) :]
    thinking, closed, answer = inner.partition(THINK_CLOSE)
    return thinking.strip(), answer.lstrip() if closed else ""


def matched_stop_sequence(candidates: list[object], text: str, stop_sequences: list[str]) -> str | None:
    """The requested stop sequence that ended generation, if the backend reveals it.

    vLLM reports it as `choices[].stop_reason`, llama.cpp as `stopping_word`; servers that leave it in the
    text show it as the text's tail.
    """
    for value in candidates:
        if isinstance(value, str) and value in stop_sequences:
            return value
    for stop in stop_sequences:
        if text.endswith(stop):
            return stop
    return None


def stop_reason_for(finish_reason: object, has_tool_use: bool, stop_sequence: str | None) -> str:
    """Anthropic stop_reason: a length cut wins (a cut-off tool call must not run, and Claude Code does not run
    tool calls of a max_tokens answer); then tool calls (servers say "stop" after calls); then the reason."""
    if finish_reason == "length":
        return "max_tokens"
    if has_tool_use:
        return "tool_use"
    reason = FINISH_TO_STOP.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"
    if reason == "tool_use":  # the backend said tool_calls but none survived translation
        return "end_turn"
    if reason == "end_turn" and stop_sequence is not None:
        return "stop_sequence"
    return reason


@dataclass
class Usage:
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


MAX_TOKEN_COUNT = 2**53  # beyond any real count, and beyond what JavaScript (Claude Code) holds exactly


def plausible_count(value: object, limit: int, minimum: int = 1) -> int | None:
    """A number a backend reports (a token count, a context length, a slot count) when it can be one: an integer,
    not a boolean, from `minimum` up to below `limit`. Anything else (a float, a string, -1, true, 2**64, which
    orjson could not even write) is treated as not reported rather than believed."""
    ok = isinstance(value, int) and not isinstance(value, bool) and minimum <= value < limit
    return value if ok else None  # type: ignore[return-value]


def _count(value: object) -> int:
    """A usage field's token count, or 0 when it is not a plausible one."""
    return plausible_count(value, MAX_TOKEN_COUNT) or 0


def usage_from_openai(usage: object, fallback_input: int, fallback_output: int) -> Usage:
    """OpenAI usage -> Anthropic usage; `input_tokens` excludes cached tokens, as Anthropic counts them."""
    if not isinstance(usage, dict):
        return Usage(fallback_input, fallback_output)
    details = object_member(usage, "prompt_tokens_details")
    prompt = _count(usage.get("prompt_tokens"))
    cached = min(_count(details.get("cached_tokens")), prompt)
    written = _count(details.get("cache_write_tokens"))
    output = _count(usage.get("completion_tokens")) if "completion_tokens" in usage else fallback_output
    if prompt == 0:  # absent, or a server that reports 0 when it does not know
        return Usage(fallback_input, output)
    return Usage(max(prompt - cached - written, 0), output, cached, written)


def reports_usage(usage: object) -> bool:
    """Whether an OpenAI `usage` holds the backend's own prompt count (else usage_from_openai estimates it)."""
    return isinstance(usage, dict) and _count(usage.get("prompt_tokens")) > 0


def estimate_output_tokens(chars: int) -> int:
    """A rough output count when the backend reports no usage (about 4 characters per token)."""
    return (chars + 3) // 4
