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


# -- strategies --------------------------------------------------------------------------------------------------
leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
junk = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def usually(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """`strategy` nine times in ten, any JSON value otherwise: most requests get deep, some break anywhere."""
    return st.sampled_from([strategy] * 9 + [junk]).flatmap(lambda chosen: chosen)


short_text = st.text(max_size=120)
tool_id = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", max_size=24)
tool_name = st.text(max_size=80)  # empty and over-long names included
plain_tool_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)

text_block = st.fixed_dictionaries({"type": st.just("text"), "text": short_text})
blocks = usually(
    st.one_of(
        text_block,
        st.fixed_dictionaries(
            {
                "type": st.just("tool_use"),
                "id": tool_id,
                "name": plain_tool_name | tool_name,
                "input": usually(st.dictionaries(st.text(max_size=8), junk, max_size=3)),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("tool_result"),
                "tool_use_id": tool_id,
                "content": usually(short_text | st.lists(text_block, max_size=3)),
            },
            optional={"is_error": usually(st.booleans())},
        ),
        st.fixed_dictionaries({"type": st.just("thinking"), "thinking": short_text, "signature": short_text}),
        st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": short_text}),
        st.fixed_dictionaries(
            {
                "type": st.just("image"),
                "source": st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["base64", "url", "file", "bogus"]),
                        "media_type": st.sampled_from(["image/png", "image/jpeg", "text/plain"]),
                        "data": short_text,
                    }
                ),
            }
        ),
        st.fixed_dictionaries({"type": st.just("document"), "source": junk}),
        st.fixed_dictionaries({"type": st.text(max_size=20)}, optional={"text": junk, "content": junk}),
    )
)
message = st.fixed_dictionaries(
    {
        "role": usually(st.sampled_from(["user", "assistant", "system"])),
        "content": usually(short_text | st.lists(blocks, max_size=4)),
    }
)
tool = st.fixed_dictionaries(
    {"name": plain_tool_name | tool_name},
    optional={
        "description": short_text,
        "input_schema": usually(st.just({"type": "object", "properties": {"x": {"type": "string"}}})),
        "type": st.sampled_from(["custom", "web_search_20250305", "bash_20250124"]),
        "defer_loading": st.booleans(),
        "cache_control": junk,
    },
)
requests = st.fixed_dictionaries(
    {
        "model": usually(st.sampled_from(["claude-opus-5-5", "claude-haiku-5-5", "claude-local"])),
        "max_tokens": usually(st.integers(min_value=1, max_value=300_000)),
        "messages": usually(st.lists(message, min_size=1, max_size=5)),
    },
    optional={
        "stream": usually(st.booleans()),
        "system": usually(short_text | st.lists(text_block, max_size=3)),
        "tools": usually(st.lists(tool, max_size=3)),
        "tool_choice": usually(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}, optional={"name": tool_name}
            )
        ),
        "thinking": usually(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["enabled", "disabled", "adaptive"])},
                optional={"budget_tokens": st.integers()},
            )
        ),
        "temperature": usually(st.floats(0, 1)),
        "stop_sequences": usually(st.lists(short_text, max_size=3)),
        "metadata": junk,
        "context_management": junk,
        "output_config": junk,
    },
)
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
