"""The Anthropic error envelope and the HTTP status <-> error type mapping.

Claude Code and the official SDKs act on `error.type` and on the HTTP status, so every failure the proxy
reports, ours or the backend's, goes through this one module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from proxy.ids import request_id

STATUS_TO_TYPE: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

TYPE_TO_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def new_request_id() -> str:
    """A request id in Anthropic's style (`req_` + 24 base62-ish characters)."""
    return request_id()


def error_type_for_status(status: int) -> str:
    """The Anthropic error type for an HTTP status (unknown 4xx -> invalid_request_error, 5xx -> api_error)."""
    if status in STATUS_TO_TYPE:
        return STATUS_TO_TYPE[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(error_type: str, message: str, request_id: str | None = None) -> dict:
    """The exact Anthropic error envelope."""
    body: dict = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def prompt_too_long_message(prompt_tokens: int, limit: int) -> str:
    """The wording Claude Code matches on to trigger compaction."""
    return f"prompt is too long: {prompt_tokens} tokens > {limit} maximum"


# reads the prompt size back out of that wording (Anthropic's own uses it too), e.g. from a backend's error
PROMPT_TOO_LONG_SIZE = re.compile(r"prompt is too long: (\d+)")


def client_fault(exc: BaseException | None) -> str | None:
    """What was wrong with the client's HTTP when `exc` (or an exception it was raised `from`) says the request
    itself was malformed, e.g. "Can not decode content-encoding: gzip"; None for any other exception. Only
    explicit causes are followed: a bug of ours raised while handling such an error must keep its traceback."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, HttpProcessingError):
            return str(exc.message).strip() or type(exc).__name__
        if isinstance(exc, RequestPayloadError) and exc.__cause__ is None:
            return str(exc).strip() or type(exc).__name__
        exc, seen = exc.__cause__, seen + 1
    return None


@dataclass
class AnthropicError(Exception):
    """An error to answer in the Anthropic envelope; raised anywhere, rendered by the app's middleware."""

    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self, request_id: str | None = None) -> dict:
        return error_body(self.error_type, self.message, request_id)

    @classmethod
    def invalid_request(cls, message: str) -> AnthropicError:
        return cls(400, "invalid_request_error", message)

    @classmethod
    def overloaded(cls, message: str, retry_after: int | None = None) -> AnthropicError:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return cls(529, "overloaded_error", message, headers)
