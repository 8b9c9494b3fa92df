"""Reading a client's request body: size, transfer and JSON problems become the client's 4xx, never our 500.

Claude Code sends 50 KB of JSON per turn; other clients may send anything. Every way a body can be unusable (too
large, undecodable compression, not UTF-8, not JSON, not an object, nested deeper than translation can write)
has its own message, so that the answer says what to fix.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from proxy.bodyparse import parse_object
from proxy.errors import AnthropicError, client_fault
from proxy.translate.surrogates import loads_replacing_surrogates


async def read_json_object(request: web.Request, limit: int) -> tuple[bytes, dict]:
    """The raw body (at most `limit` bytes) and its parsed JSON object, or a 400/413 that says what is wrong."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    try:
        raw = await request.read()
    except web.RequestPayloadError as exc:  # e.g. a gzip body that does not decompress, a broken chunk
        reason = client_fault(exc) or "the body ended early"
        raise AnthropicError.invalid_request(f"request body could not be read: {reason}") from None
    try:
        body = parse_object(raw)  # validates UTF-8 too; the slower checks below only explain a failure
    except orjson.JSONDecodeError as exc:
        body = with_lone_surrogates(raw)
        if body is not None:
            return raw, body
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            message = f"request body is not valid UTF-8 (bad byte at offset {bad.start})"
            raise AnthropicError.invalid_request(message) from None
        if not raw.strip():
            raise AnthropicError.invalid_request("request body is empty: expected a JSON object") from None
        raise AnthropicError.invalid_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise AnthropicError.invalid_request(f"request body must be a JSON object, not {type(body).__name__}")
    return raw, body


def with_lone_surrogates(raw: bytes) -> dict | None:
    """The body, when a lone surrogate escape is all that orjson refused in it (they become U+FFFD): Claude Code
    sends one in every turn after a tool's output was cut in the middle of an emoji, and a refusal would end the
    session (see proxy/translate/surrogates.py). None when that was not the problem."""
    if b"\\u" not in raw:
        return None
    try:
        body = loads_replacing_surrogates(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError too
        return None
    return body if isinstance(body, dict) else None


class _NestingWithinLimits:
    """JSON nested deeper than orjson writes (about 250 levels) or than Python's stack allows cannot be
    translated: that is the client's 400, not our 500. (Parsing stops at 1,024 levels already.) A class rather
    than a generator-based context manager, which costs ~0.8 µs more on every request."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, RecursionError):
            raise too_deep() from None
        if isinstance(exc, orjson.JSONEncodeError) and "ecursion limit" in str(exc):
            raise too_deep() from None
        return False


_NESTING_WITHIN_LIMITS = _NestingWithinLimits()  # stateless, so one serves every request


def nesting_within_limits() -> _NestingWithinLimits:
    """`with nesting_within_limits():` turns too-deep JSON met inside the block into the client's 400."""
    return _NESTING_WITHIN_LIMITS


def too_deep() -> AnthropicError:
    return AnthropicError.invalid_request(
        "request JSON nests too deeply to translate (at most about 250 levels)"
    )


def too_large(limit: int) -> AnthropicError:
    return AnthropicError(413, "request_too_large", f"request body is larger than the {limit}-byte limit")
