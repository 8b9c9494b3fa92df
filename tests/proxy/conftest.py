"""Fixtures: the real proxy app on 127.0.0.1 (free port) in front of a FakeBackend, plus SDK clients for it."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anthropic
import pytest
from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestServer

from proxy.app import build_app
from proxy.config import Config
from tests.proxy.fake_backend import FakeBackend

CLIENT_TIMEOUT = ClientTimeout(total=20)
REQUEST_ID = re.compile(r"^req_[A-Za-z0-9]{20,}$")
MESSAGE = {"model": "claude-opus-5-5", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class RunningProxy:
    """A started proxy: its base URL (what ANTHROPIC_BASE_URL takes) and a plain HTTP session for raw calls."""

    server: TestServer
    http: ClientSession
    config: Config
    clients: list[anthropic.AsyncAnthropic] = field(default_factory=list)  # closed with the proxy

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def sdk(self, api_key: str = "sk-test", **options: object) -> anthropic.AsyncAnthropic:
        """The official SDK pointed at the proxy (no retries, so every error is seen as it is)."""
        client = anthropic.AsyncAnthropic(
            base_url=self.url, api_key=api_key, max_retries=0, timeout=20, **options
        )
        # closed while the loop runs: a client left to the garbage collector schedules its close on a loop
        # that may be gone by then, and "Event loop is closed" lands in whichever test runs at that moment
        self.clients.append(client)
        return client

    async def post(self, path: str, body: object = None, **kwargs):
        return await self.http.post(self.url + path, json=body, **kwargs)


@contextlib.asynccontextmanager
async def running_proxy(config: Config) -> AsyncIterator[RunningProxy]:
    server = TestServer(build_app(config), host="127.0.0.1", port=0, handler_cancellation=True)
    await server.start_server()
    try:
        async with ClientSession(timeout=CLIENT_TIMEOUT) as http:
            running = RunningProxy(server, http, config)
            try:
                yield running
            finally:
                for client in running.clients:
                    await client.close()
    finally:
        await server.close()


ProxyFactory = Callable[..., Awaitable[RunningProxy]]


@pytest.fixture
async def backend() -> AsyncIterator[FakeBackend]:
    """A fake OpenAI backend (vLLM-like: /v1/models reports max_model_len 32768)."""
    async with FakeBackend() as fake:
        yield fake


@pytest.fixture
async def start_proxy() -> AsyncIterator[ProxyFactory]:
    """`await start_proxy(upstream=..., **config_fields)`: a running proxy, closed after the test."""
    stack = contextlib.AsyncExitStack()

    async def start(**fields: object) -> RunningProxy:
        return await stack.enter_async_context(running_proxy(Config(**fields)))

    async with stack:
        yield start


@pytest.fixture
async def proxy(backend: FakeBackend, start_proxy: ProxyFactory) -> RunningProxy:
    """The proxy in front of `backend` with the default config."""
    return await start_proxy(upstream=backend.url)


async def envelope(response, status: int, error_type: str) -> str:
    """Assert the Anthropic error envelope, status and request id; return the message."""
    assert response.status == status
    body = await response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert REQUEST_ID.match(response.headers["request-id"])
    assert body["request_id"] == response.headers["request-id"]
    assert "Traceback" not in body["error"]["message"]
    return body["error"]["message"]
