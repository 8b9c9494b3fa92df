"""The errors of a run, grouped, with what to do about the common ones (see harness/diagnosis.py).

A user should see why turns failed (e.g. 51 turns of "prompt is too long" from a server started with a small
context) without opening the HTML report. Pure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.errors import PROMPT_TOO_LONG_SIZE
from proxy.translate.textcalls import VLLM_TOOL_FLAGS

_NUMBER = re.compile(r"\d+")
# the proxy's wording and Anthropic's for "input length + max_tokens > context" (input length first)
_PROMPT_SIZES = (
    PROMPT_TOO_LONG_SIZE,
    re.compile(r"input length and `max_tokens` exceed context limit: (\d+)"),
)
CONTEXT_HINT = (
    "the prompts do not fit the backend's context: start it with a larger one (ccbench backend start "
    "llamacpp --ctx N; llama-server -c N, which its -np slots share; vllm serve --max-model-len N; OLLAMA_CONTEXT_LENGTH=N ollama serve; lms load MODEL "
    "--context-length N); Claude Code's first "
    "request alone is ~13,000 tokens"
)
# (fragment of "type: message", lower case) -> what to do; the first match wins.
HINTS: tuple[tuple[str, str], ...] = (
    (
        "enable-auto-tool-choice",
        f"vLLM refuses tools without its tool parser: restart it with {VLLM_TOOL_FLAGS}",
    ),
    ("requires --jinja", "restart llama-server with --jinja: it renders tools only with its Jinja templates"),
    (
        "does not support tools",
        "the model cannot take tools (Ollama says so for a model whose template has no "
        "tool support): pick a model with tool calling (Ollama tags them `tools`)",
    ),
    ("prompt is too long", CONTEXT_HINT),
    ("exceed context limit", CONTEXT_HINT),
    (
        "cannot take this input",
        "the model cannot read an input of these scenarios (an image for a text-only "
        "model): use a multimodal model, or leave those scenarios out",
    ),
    ("not reachable", "the backend could not be reached during the run: is it still up? (see its log)"),
    (
        "timeout",
        "turns outlasted --timeout: raise it, or lower --concurrency so requests do not queue for "
        "the backend's slots",
    ),
    ("rate_limit", "the backend rate-limits: lower --concurrency"),
    ("overloaded", "the backend is at capacity: lower --concurrency"),
    (
        "credentials",
        "the backend refused the key: pass the right one with --api-key / CCBENCH_BACKEND_API_KEY",
    ),
)


@dataclass(frozen=True)
class ErrorGroup:
    """Errors that differ only in their numbers (token counts, ports), with the first one as the example."""

    count: int
    kind: str
    example: str
    hint: str | None = None


@dataclass(frozen=True)
class ErrorDigest:
    groups: list[ErrorGroup]
    total: int
    other_groups: int  # groups beyond the ones listed
    largest_prompt: int | None  # the largest prompt a context error named, in tokens


def _prompt_size(message: str) -> int | None:
    """The prompt size (tokens) a context error names, if it is one."""
    for pattern in _PROMPT_SIZES:
        match = pattern.search(message)
        if match:
            return int(match.group(1))
    return None


def _error_text(error: object) -> tuple[str, str]:
    if isinstance(error, dict):
        return str(error.get("type") or "error"), str(error.get("message") or "")
    return "error", str(error)


def hint_for(kind: str, message: str) -> str | None:
    haystack = f"{kind}: {message}".lower()
    return next((hint for fragment, hint in HINTS if fragment in haystack), None)


def error_digest(errors: Iterable[object], limit: int = 3) -> ErrorDigest:
    """The `limit` most frequent kinds among the errors of a run's turns (messages and count_tokens alike)."""
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    largest: int | None = None
    for error in errors:
        if error is None:
            continue
        kind, message = _error_text(error)
        key = (kind, _NUMBER.sub("N", message))
        counts[key] += 1
        examples.setdefault(key, message)
        size = _prompt_size(message)
        if size is not None:
            largest = size if largest is None else max(largest, size)
    ranked = counts.most_common()
    groups = [
        ErrorGroup(count, kind, examples[(kind, shape)], hint_for(kind, examples[(kind, shape)]))
        for (kind, shape), count in ranked[:limit]
    ]
    return ErrorDigest(groups, sum(counts.values()), max(0, len(ranked) - limit), largest)


def digest_lines(digest: ErrorDigest, width: int = 160) -> list[str]:
    """The digest as terminal lines (empty when the run had no errors)."""
    if not digest.total:
        return []
    lines = [f"errors ({digest.total}), most frequent first:"]
    for group in digest.groups:
        example = group.example if len(group.example) <= width else group.example[: width - 1] + "…"
        lines.append(f"  {group.count} × {group.kind}: {example}")
        if group.hint:
            hint = group.hint
            if hint == CONTEXT_HINT and digest.largest_prompt:
                hint += f"; the largest prompt here was {digest.largest_prompt:,} tokens"
            lines.append(f"      → {hint}")
    if digest.other_groups:
        lines.append(f"  … and {digest.other_groups} other kind(s): see the results file or --html")
    return lines
