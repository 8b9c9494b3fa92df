"""Property-based, the backend's side: whatever a backend answers (any status, any content type, any bytes,
JSON of any shape, a stream of anything), Claude Code gets an Anthropic error envelope or a complete stream,
never our own "internal proxy error" and never a hang.

test_fuzz.py does the same for what clients send, test_hostile_chunks.py for the translator alone; this one
drives the whole proxy over HTTP against the fake backend (in a thread, as in test_fuzz.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from proxy.errors import TYPE_TO_STATUS
from tests.proxy.fake_backend import Reply, messages_body, sse_events
from tests.proxy.strategies import junk
from tests.proxy.test_fuzz import Answer, ProxyThread

HOSTILE = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def running() -> Iterator[ProxyThread]:
    with ProxyThread() as proxy:
        yield proxy


def stdlib_json(value: object) -> bytes:
    """What a server might write: the standard library also writes NaN, and integers beyond 64 bits."""
    return json.dumps(value).encode()


shapes = st.one_of(
    junk.map(stdlib_json),
    st.fixed_dictionaries({"error": junk}).map(stdlib_json),
    st.fixed_dictionaries({"choices": junk}, optional={"usage": junk, "error": junk}).map(stdlib_json),
    st.fixed_dictionaries(
        {"choices": st.lists(st.fixed_dictionaries({"message": junk}, optional={"finish_reason": junk}))}
    ).map(stdlib_json),
    st.binary(max_size=300),
    st.sampled_from(
        [b"", b"[" * 5000, b"<html>502 Bad Gateway</html>", b'{"error": "\\ud83d"}', b"\xff\xfe"]
    ),
)
statuses = st.one_of(
    st.sampled_from([200, 400, 401, 404, 413, 422, 429, 500, 502, 503, 504]), st.integers(200, 599)
)
content_types = st.sampled_from(["application/json", "text/event-stream", "text/plain", "text/html"])
stream_items = st.one_of(
    shapes.map(lambda data: b"data: " + data.replace(b"\n", b" ") + b"\n\n"),
    st.binary(max_size=100),
    st.sampled_from([b"data: [DONE]\n\n", b": keep-alive\n\n", b"event: error\n", b"data: {\n\n"]),
)


def check(answer: Answer, stream: bool) -> None:
    event(f"HTTP {answer.status}")
    assert b"internal proxy error" not in answer.body, answer.body[:500]
    assert answer.headers.get("request-id", "").startswith("req_")
    if answer.headers.get("Content-Type", "").startswith("text/event-stream"):
        assert stream and answer.status == 200
        events = sse_events(answer.body)
        assert events[0]["type"] == "message_start"
        assert events[-1]["type"] in ("message_stop", "error"), events[-1]
        if events[-1]["type"] == "error":
            assert events[-1]["error"]["type"] in TYPE_TO_STATUS
        return
    body = orjson.loads(answer.body)
    if answer.status == 200:
        assert body["type"] == "message" and isinstance(body["content"], list)
    else:
        assert body["type"] == "error"
        # a backend's own 4xx keeps its status (a 405 or 422 too), with the nearest type: the same class of status
        assert (TYPE_TO_STATUS[body["error"]["type"]] < 500) == (answer.status < 500), (answer.status, body)
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@HOSTILE
@given(status=statuses, content_type=content_types, raw=shapes, stream=st.booleans())
@example(status=503, content_type="application/json", raw=b"[" * 5000, stream=False)  # was our own 500
@example(status=400, content_type="application/json", raw=b'{"error": "\\ud83d"}', stream=True)  # unreadable
def test_any_whole_answer(running, status, content_type, raw, stream):
    running.backend.reply = Reply(status=status, body=raw, headers={"Content-Type": content_type})
    check(running.post("/v1/messages", orjson.dumps(messages_body(stream=stream))), stream)


@HOSTILE
@given(items=st.lists(stream_items, max_size=8), done=st.booleans())
def test_any_stream(running, items, done):
    running.backend.reply = Reply(chunks=items, done=done)
    check(running.post("/v1/messages", orjson.dumps(messages_body(stream=True))), True)
