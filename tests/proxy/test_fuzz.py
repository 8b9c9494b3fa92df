"""Property-based: whatever a client sends, a healthy backend never turns into a 5xx, a hang or a non-Anthropic body.

The proxy and the fake backend run on their own event loop in a thread, so hypothesis drives plain sync tests.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from proxy.app import build_app
from proxy.config import Config
from proxy.errors import TYPE_TO_STATUS
from tests.proxy.fake_backend import FakeBackend, messages_body, sse_events
from tests.proxy.strategies import junk, requests

REQUEST_TIMEOUT = 30  # a hang fails the example instead of the whole suite
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class ProxyThread:
    """A fake backend and the proxy app on a private event loop; `post` is synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def _run(self, coro, timeout: float = REQUEST_TIMEOUT):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        self._run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _start(self) -> None:
        self.backend = await FakeBackend().start()
        self.server = TestServer(build_app(Config(upstream=self.backend.url)), host="127.0.0.1", port=0)
        await self.server.start_server()
        self.http = ClientSession(timeout=ClientTimeout(total=REQUEST_TIMEOUT))

    async def _stop(self) -> None:
        await self.http.close()
        await self.server.close()
        await self.backend.close()

    async def _post(self, path: str, data: bytes) -> Answer:
        url = str(self.server.make_url(path))
        headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
        async with self.http.post(url, data=data, headers=headers) as response:
            return Answer(response.status, dict(response.headers), await response.read())

    def post(self, path: str, data: bytes) -> Answer:
        return self._run(self._post(path, data))


@pytest.fixture(scope="module")
def running() -> Iterator[ProxyThread]:
    with ProxyThread() as proxy:
        yield proxy


def check_answer(answer: Answer) -> None:
    """Never a 5xx (the backend is healthy), always a request-id, always the envelope or a complete stream."""
    event(f"HTTP {answer.status}")
    assert answer.status < 500, answer.body[:500]
    assert answer.headers.get("request-id", "").startswith("req_")
    if answer.headers.get("Content-Type", "").startswith("text/event-stream"):
        assert answer.status == 200
        events = sse_events(answer.body)
        assert events[0]["type"] == "message_start"
        assert events[-1]["type"] == "message_stop", events[-1]
        return
    body = orjson.loads(answer.body)
    if answer.status >= 400:
        assert body["type"] == "error"
        assert TYPE_TO_STATUS[body["error"]["type"]] == answer.status
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert body["request_id"] == answer.headers["request-id"]
    else:
        assert body.get("type") == "message" or isinstance(body.get("input_tokens"), int)


paths = st.sampled_from(["/v1/messages", "/v1/messages?beta=true", "/v1/messages/count_tokens"])


def encode(body: object) -> bytes:
    """Stdlib JSON: it also writes what orjson refuses (NaN, ints beyond 64 bits), which the proxy must reject."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(body=requests, path=paths)
def test_generated_requests(running, body, path):
    check_answer(running.post(path, encode(body)))


@FUZZ
@given(
    kind=st.sampled_from(["bytes", "bad-utf8", "deep", "huge", "junk", "truncated"]),
    size=st.integers(min_value=1, max_value=3000),
    noise=st.binary(max_size=64),
    value=junk,
    stream=st.booleans(),
    path=paths,
)
def test_malformed_bodies(running, kind, size, noise, value, stream, path):
    valid = encode(messages_body(stream=stream))
    if kind == "bytes":
        data = noise
    elif kind == "bad-utf8":
        data = valid.replace(b"Say hi.", b"Say \xff\xfe" + noise)
    elif kind == "deep":
        data = encode(messages_body(stream=stream)).replace(b'"Say hi."', b"[" * size + b"]" * size)
    elif kind == "huge":
        data = encode(messages_body("x" * (size * 300), stream=stream))
    elif kind == "junk":
        data = encode(value)
    else:
        data = valid[: size % len(valid)]
    check_answer(running.post(path, data))
