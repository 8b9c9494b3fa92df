"""Backend (OpenAI-compatible server) errors -> Anthropic errors that Claude Code acts on correctly.

Decisions (documented in docs/readme/translate.md):
- a context overflow, in any server's wording, becomes 400 `prompt is too long: N tokens > M maximum`,
  the text Claude Code compacts on;
- 429 stays 429 rate_limit_error; 502/503 become 529 overloaded_error (Claude Code retries both) and keep
  `retry-after`; 504 stays 504 timeout_error (the SDK retries it too);
- 401/403 from the backend mean the *proxy's* upstream credentials are wrong, not the user's: they stay
  401/403 (retrying cannot help) with a message that says so;
- input the model cannot take (an image for a text-only model), or a server started without what the request
  needs (llama-server without `--jinja` and tools), is a 400 invalid_request_error whatever status the server
  chose (llama-server answers 500): Claude Code retries a 500 ten times, never a 400;
- the backend's text is shortened and never includes a stack trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from proxy.errors import PROMPT_TOO_LONG_SIZE, AnthropicError, error_type_for_status, prompt_too_long_message
from proxy.translate.surrogates import replace_lone_surrogates

MAX_MESSAGE_CHARS = 500
OVERFLOW_PATTERNS = (
    "exceed_context_size",
    "maximum context length",
    "context length exceeded",
    "context_length_exceeded",
    "prompt is too long",
    "exceeds the available context size",
    "context window",
    "too many tokens",
    "prompt too long",
    "input length",
    "context length",
    "overflow",
)
# Servers' wording for input the loaded model cannot take (llama.cpp: "image input is not supported - hint: …",
# vLLM: "… is not a multimodal model", LM Studio: "Model does not support images").
UNSUPPORTED_INPUT_PATTERNS = (
    "input is not supported",
    "not a multimodal model",
    "does not support image",
    "does not support audio",
)
# Servers' wording for a server started without what the request needs (llama-server without --jinja answers
# every request with tools with HTTP 500 "tools param requires --jinja flag"): a 400 naming the flag, not a 500
# that Claude Code retries ten times before showing anything.
SETUP_PATTERNS = ("requires --jinja",)
_MAX_RE = (
    re.compile(r"maximum context length is (\d+)"),
    re.compile(r"context (?:length|size|window) of (?:only )?(\d+)"),
    re.compile(r"context length \((\d+)"),
    re.compile(r"(\d+) (?:tokens? )?maximum"),
    re.compile(r"n_ctx[\"'=: ]+(\d+)"),
    re.compile(r"> ?(\d+)"),
)
_PROMPT_RE = (
    re.compile(r"\((\d+) in the messages"),
    re.compile(r"your (?:request|prompt|messages?) (?:has|have|contains?|resulted in) (\d+)"),
    PROMPT_TOO_LONG_SIZE,
    re.compile(r"n_prompt_tokens[\"'=: ]+(\d+)"),
    re.compile(r"input \((\d+) tokens"),
    re.compile(r"keep the first (\d+) tokens"),
    re.compile(r"requested (\d+) tokens"),
    re.compile(r"(\d+) (?:input )?tokens"),
)
_COMPLETION_RE = re.compile(r"(\d+) in the completion")


def max_tokens_overflow_message(prompt: int, max_tokens: int, limit: int) -> str:
    """Anthropic's wording when the prompt fits but prompt + max_tokens does not (Claude Code lowers max_tokens)."""
    return (
        f"input length and `max_tokens` exceed context limit: {prompt} + {max_tokens} > {limit}, "
        "decrease input length or `max_tokens` and try again"
    )


def _first_int(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return None


def _clean(text: str) -> str:
    """Short, single-line backend text with any stack trace cut off."""
    for marker in ("Traceback (most recent call last)", '\n  File "', "\tat "):
        if marker in text:
            text = text.split(marker, 1)[0]
    text = " ".join(text.split())
    return text[:MAX_MESSAGE_CHARS] + ("…" if len(text) > MAX_MESSAGE_CHARS else "")


def parse_backend_error(body: object) -> tuple[str, dict]:
    """(message, error object) from OpenAI-style, vLLM-style, llama.cpp-style, FastAPI-style or plain bodies."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    parsed: object = body
    if isinstance(body, str):
        try:  # a lone surrogate escape becomes U+FFFD: strict JSON parsers refuse to read one back
            parsed = replace_lone_surrogates(json.loads(body))
        except (ValueError, RecursionError):  # nested beyond the stack is garbage like any other
            return body.strip(), {}
    if not isinstance(parsed, dict):
        return str(parsed), {}
    error = parsed.get("error")
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg") or error.get("type") or ""
        return str(message), error
    if isinstance(error, str):
        return error, parsed
    message = parsed.get("message") or parsed.get("detail") or ""
    if not isinstance(message, str):
        message = json.dumps(message)[:MAX_MESSAGE_CHARS]
    return message, parsed


def overflow_error(message: str, error: Mapping[str, object]) -> AnthropicError | None:
    """The Anthropic 400 for a context overflow, or None when the error is something else."""
    haystack = f"{error.get('type', '')} {error.get('code', '')} {message}".lower()
    if not any(pattern in haystack for pattern in OVERFLOW_PATTERNS):
        return None
    prompt = error.get("n_prompt_tokens")
    limit = error.get("n_ctx")
    prompt = prompt if isinstance(prompt, int) else _first_int(_PROMPT_RE, haystack)
    limit = limit if isinstance(limit, int) else _first_int(_MAX_RE, haystack)
    if prompt is not None and limit is not None and prompt > limit:
        return AnthropicError.invalid_request(prompt_too_long_message(prompt, limit))
    completion = _first_int((_COMPLETION_RE,), haystack)
    if (
        limit is not None and prompt is not None and completion is not None
    ):  # prompt fits, max_tokens does not
        return AnthropicError.invalid_request(max_tokens_overflow_message(prompt, completion, limit))
    if limit is not None and prompt is not None:
        return AnthropicError.invalid_request(prompt_too_long_message(limit + 1, limit))
    return AnthropicError.invalid_request(
        f"prompt is too long: {_clean(message) or 'context length exceeded'}"
    )


def _retry_after(headers: Mapping[str, str]) -> dict[str, str]:
    for key, value in headers.items():
        if key.lower() == "retry-after" and value.strip().isdigit():
            return {"retry-after": value.strip()}
    return {}


def error_in_body(payload: dict) -> AnthropicError:
    """An `{"error": …}` object that arrived with HTTP 200 (a mid-stream chunk or a completion body)."""
    error = payload.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return backend_error_to_anthropic(status, payload, {})


def backend_error_to_anthropic(
    status: int, body: bytes | str | dict, headers: Mapping[str, str]
) -> AnthropicError:
    """A backend error response -> the AnthropicError the proxy answers with."""
    message, error = parse_backend_error(body)
    if status in (400, 413, 422) or status >= 500:
        overflow = overflow_error(message, error)
        if overflow is not None:
            return overflow
    text = _clean(message) or f"HTTP {status}"
    if status != 429 and any(pattern in text.lower() for pattern in UNSUPPORTED_INPUT_PATTERNS):
        return AnthropicError.invalid_request(f"the backend's model cannot take this input: {text}")
    if status != 429 and any(pattern in text for pattern in SETUP_PATTERNS):
        return AnthropicError.invalid_request(f"the backend is not set up for this request: {text}")
    retry = _retry_after(headers)
    if status == 429:
        return AnthropicError(429, "rate_limit_error", f"backend rate limit: {text}", retry)
    if status in (502, 503, 529):
        return AnthropicError(529, "overloaded_error", f"backend overloaded (HTTP {status}): {text}", retry)
    if status == 504:
        return AnthropicError(504, "timeout_error", f"backend timed out (HTTP 504): {text}", retry)
    if status in (401, 403):
        error_type = error_type_for_status(status)
        return AnthropicError(
            status,
            error_type,
            f"backend rejected the proxy's credentials (HTTP {status}); "
            f"check the proxy's upstream API key: {text}",
        )
    if status >= 500:
        return AnthropicError(500, "api_error", f"backend error (HTTP {status}): {text}")
    if 400 <= status < 500:
        return AnthropicError(status, error_type_for_status(status), f"backend rejected the request: {text}")
    return AnthropicError(502, "api_error", f"unexpected backend response (HTTP {status}): {text}")
