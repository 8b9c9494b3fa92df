"""Error answers from a backend that are themselves garbage still become the right Anthropic error.

A backend's error body is read with the standard library (it may be anything: JSON, HTML, a traceback). JSON
nested deeper than Python's stack made that parse raise RecursionError, which ended as our own 500 "internal
proxy error" instead of the backend's status; a lone surrogate escape in an error message could not be written
(now it is U+FFFD, as in a model's text).
"""

from __future__ import annotations

import pytest

from tests.proxy.fake_backend import Reply
from tests.proxy.test_faults import assert_envelope, messages_body, stream_raw

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
@pytest.mark.parametrize(
    ("backend_status", "status", "error_type"),
    [(500, 500, "api_error"), (503, 529, "overloaded_error"), (400, 400, "invalid_request_error")],
)
async def test_an_error_body_nested_beyond_the_stack_keeps_the_backends_status(
    backend, proxy, stream, backend_status, status, error_type
):
    backend.reply = Reply(status=backend_status, body=DEEP, headers={"Content-Type": "application/json"})
    got, _, [body] = await stream_raw(proxy, messages_body(stream=stream))
    assert (got, body["error"]["type"]) == (status, error_type), body
    assert_envelope(body, error_type)
    assert "internal proxy error" not in body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
async def test_an_error_message_with_a_lone_surrogate_escape_reaches_the_client(backend, proxy, stream):
    raw = b'{"error": {"message": "bad token \\ud83d in prompt", "type": "invalid_request_error"}}'
    backend.reply = Reply(status=400, body=raw, headers={"Content-Type": "application/json"})
    got, _, [body] = await stream_raw(proxy, messages_body(stream=stream))
    assert got == 400, body
    assert_envelope(body, "invalid_request_error")
    assert "bad token \ufffd in prompt" in body["error"]["message"]  # readable by strict JSON parsers too
