"""Reading a backend's whole (non-streamed) answers with bounded memory.

A backend that sends without end, or announces gigabytes, must not take the proxy's memory and with it every
other user's requests: a completion is read up to MAX_ANSWER_BYTES (more is a broken backend, not an answer),
an error body up to MAX_ERROR_BYTES (its status and the start of its message say all there is to say).
"""

from __future__ import annotations

import aiohttp

from proxy.errors import AnthropicError

MAX_ANSWER_BYTES = 64 << 20
MAX_ERROR_BYTES = 1 << 20


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The body and True, or its first `limit` bytes and False when it is longer (or announced longer)."""
    if response.content_length is not None and response.content_length > limit:
        return b"", False
    parts: list[bytes] = []
    size = 0
    while piece := await response.content.readany():
        parts.append(piece)
        size += len(piece)
        if size > limit:
            return b"".join(parts)[:limit], False
    return b"".join(parts), True


async def read_answer(response: aiohttp.ClientResponse) -> bytes:
    """A whole non-streamed answer; 500 api_error when it is over MAX_ANSWER_BYTES."""
    raw, whole = await _read_limited(response, MAX_ANSWER_BYTES)
    if not whole:
        raise AnthropicError(
            500, "api_error", f"backend answer is larger than {MAX_ANSWER_BYTES} bytes; not read"
        )
    return raw


async def read_error_body(response: aiohttp.ClientResponse) -> bytes:
    """An error answer's body, cut at MAX_ERROR_BYTES (the status and the start of the message say enough)."""
    raw, _ = await _read_limited(response, MAX_ERROR_BYTES)
    return raw
