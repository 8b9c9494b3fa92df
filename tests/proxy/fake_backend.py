"""A controllable fake OpenAI-compatible backend (aiohttp, 127.0.0.1, port 0) for tests and benchmarks.

It answers `/v1/chat/completions` (streaming and not) from a scripted `Reply`, records every request it receives,
and can misbehave on purpose (never answer, stall, cut the stream mid-line, error statuses, garbage chunks) so the
proxy's fault handling can be tested against the real wire. It also serves `/v1/models` (with `max_model_len`),
optionally llama.cpp's `/props`, `/apply-template` and `/tokenize`, and `/v1/messages` for pass-through tests
(the same `Reply`, with raw Anthropic SSE bytes as chunks).

    async with FakeBackend(Reply(chunks=chunks_from_blocks([{"type": "text", "text": "hi"}]))) as backend:
        backend.url            # "http://127.0.0.1:PORT/v1"  (what Config.upstream takes)
        backend.push(Reply.error(429, retry_after=3))   # the next request gets this; later ones the default
        backend.requests[-1].body
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.proxy.fake_chunks import Chunk, chunk, chunks_from_blocks, completion_from_chunks, usage_chunk

__all__ = [
    "Chunk",
    "FakeBackend",
    "ReceivedRequest",
    "Reply",
    "chunk",
    "chunks_from_blocks",
    "closed_port_url",
    "completion_from_chunks",
    "messages_body",
    "sse_events",
    "usage_chunk",
    "wait_until",
]


@dataclass
class Reply:
    """One scripted answer. With `body` set, that body is returned as is (any status), streaming or not."""

    chunks: list[Chunk] = field(default_factory=list)
    completion: dict | None = None  # non-streaming answer; default: built from `chunks`
    status: int = 200
    body: dict | bytes | None = None  # answered verbatim instead of a completion / stream
    headers: dict[str, str] = field(default_factory=dict)
    prefill_delay: float = 0.0  # seconds before the response headers (math.inf = accept and never answer)
    hold: asyncio.Event | None = None  # answer only once the test sets this event (deterministic "busy")
    chunk_delay: float = 0.0  # seconds between chunks (slow generation)
    stall_after: int | None = None  # after this many chunks, stop sending but keep the connection open
    cut_after: int | None = None  # after this many chunks, send half a line and close the connection
    done: bool = True  # end the stream with `data: [DONE]`

    @classmethod
    def error(cls, status: int, message: str = "backend error", retry_after: int | None = None) -> Reply:
        """An OpenAI-shaped error answer with an HTTP status (and Retry-After when given)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"error": {"message": message, "type": "server_error", "code": status}}
        return cls(status=status, body=body, headers=headers)

    @classmethod
    def never_answer(cls) -> Reply:
        return cls(prefill_delay=math.inf)


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when the body was not JSON
    raw: bytes


def closed_port_url(path: str = "/v1") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def _encode(item: Chunk) -> bytes:
    return item if isinstance(item, bytes) else b"data: " + orjson.dumps(item) + b"\n\n"


class FakeBackend:
    """The fake server. `reply` answers every request unless replies were queued with `push()`."""

    def __init__(
        self,
        reply: Reply | None = None,
        *,
        model: str = "fake-model",
        max_model_len: int | None = 32768,
        llamacpp: bool = False,
        total_slots: int = 1,
        ollama: bool = False,
        lmstudio: bool = False,
    ) -> None:
        self.reply = reply or Reply(
            chunks=chunks_from_blocks([{"type": "text", "text": "Hello from the fake."}])
        )
        self.model = model
        self.max_model_len = max_model_len
        self.llamacpp = llamacpp
        self.total_slots = total_slots
        self.ollama = ollama  # answers /api/version and /api/ps as Ollama does
        self.ollama_loaded: dict[str, int] = {}  # Ollama's loaded models -> the context each was given
        self.other_models: list[str] = []  # listed after `model` (Ollama lists every model it has pulled)
        self.lmstudio = lmstudio  # answers /api/v1/models as LM Studio 0.4 does
        self.lmstudio_models: list[dict] = []  # its entries; when set, /v1/models lists their keys instead
        self.requests: list[ReceivedRequest] = []
        self.tokenize_answer: dict | None = None  # answered by /tokenize verbatim instead of the fake count
        self.tokenize_delay = 0.0  # seconds /tokenize waits before answering
        self.disconnects = 0  # requests whose client went away before the answer was complete
        self.disconnected = asyncio.Event()  # set at each such disconnect
        self._queue: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> FakeBackend:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/v1/messages", self._completions)
        app.router.add_get("/v1/models", self._models)
        if self.llamacpp:
            app.router.add_get("/props", self._props)
            app.router.add_post("/apply-template", self._apply_template)
        app.router.add_post("/tokenize", self._tokenize)
        if self.ollama:
            app.router.add_get("/api/version", self._ollama_version)
            app.router.add_get("/api/ps", self._ollama_ps)
        if self.lmstudio:
            app.router.add_get("/api/v1/models", self._lmstudio_models)
        # handler_cancellation: a handler waiting on a silent/stalled reply is cancelled when the client leaves.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)  # 0 at first; its old port on a restart
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBackend:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.root_url + "/v1"

    @property
    def open_connections(self) -> int:
        """TCP connections currently open to this server (keep-alive ones included)."""
        server = self._runner.server if self._runner else None
        return len(server.connections) if server else 0

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order; afterwards `self.reply` answers again."""
        self._queue.extend(replies)

    # -- handlers ---------------------------------------------------------------------------------------------
    async def _record(self, request: web.Request) -> ReceivedRequest:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        received = ReceivedRequest(request.method, request.path_qs, dict(request.headers), body, raw)
        self.requests.append(received)
        return received

    def _note_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        received = await self._record(request)
        reply = self._queue.popleft() if self._queue else self.reply
        try:
            if reply.hold is not None:
                await reply.hold.wait()
            if reply.prefill_delay:
                await asyncio.sleep(reply.prefill_delay if math.isfinite(reply.prefill_delay) else 1e9)
            if reply.body is not None:
                raw = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
                headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-type"}
                ctype = "application/json" if isinstance(reply.body, dict) else "text/plain"
                ctype = next((v for k, v in reply.headers.items() if k.lower() == "content-type"), ctype)
                return web.Response(status=reply.status, body=raw, headers=headers, content_type=ctype)
            stream = isinstance(received.body, dict) and bool(received.body.get("stream"))
            if not stream:
                completion = reply.completion or completion_from_chunks(reply.chunks, model=self.model)
                return web.json_response(completion, status=reply.status, headers=reply.headers, dumps=_dumps)
            return await self._stream(request, reply)
        except (asyncio.CancelledError, ConnectionResetError):
            self._note_disconnect()
            raise

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(
            status=reply.status, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        response.headers.update(reply.headers)
        await response.prepare(request)
        for sent, item in enumerate(reply.chunks):
            if reply.stall_after is not None and sent >= reply.stall_after:
                await asyncio.sleep(1e9)
            if reply.cut_after is not None and sent >= reply.cut_after:
                await self._cut(request, response, item)
                return response
            if reply.chunk_delay and sent:
                await asyncio.sleep(reply.chunk_delay)
            await response.write(_encode(item))
        if reply.stall_after is not None:
            await asyncio.sleep(1e9)
        if reply.cut_after is not None:
            await self._cut(request, response, chunk({"content": "lost"}))
            return response
        if reply.done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    @staticmethod
    async def _cut(request: web.Request, response: web.StreamResponse, item: Chunk) -> None:
        """Send the first half of a line, then drop the connection without finishing the chunked body."""
        line = _encode(item)
        await response.write(line[: max(1, len(line) // 2)])
        await asyncio.sleep(0.01)  # let the half line reach the client before the reset
        if request.transport is not None:
            request.transport.close()

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        if self.lmstudio_models:  # LM Studio lists every model it has, loaded or not
            listed = [
                {"id": m["key"], "object": "model", "owned_by": "organization_owner"}
                for m in self.lmstudio_models
            ]
            return web.json_response({"object": "list", "data": listed})
        entry: dict = {"id": self.model, "object": "model", "owned_by": "fake"}
        if self.max_model_len is not None:
            entry["max_model_len"] = self.max_model_len
        others = [{"id": name, "object": "model", "owned_by": "fake"} for name in self.other_models]
        return web.json_response({"object": "list", "data": [entry, *others]})

    async def _lmstudio_models(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"models": self.lmstudio_models})

    async def _ollama_version(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"version": "0.13.0"})

    async def _ollama_ps(self, request: web.Request) -> web.Response:
        """Ollama's running models, in the shape its /api/ps has (`context_length`: what it was loaded with)."""
        await self._record(request)
        models = [
            {"name": name, "model": name, "size": 1, "size_vram": 1, "context_length": context}
            for name, context in self.ollama_loaded.items()
        ]
        return web.json_response({"models": models})

    async def _props(self, request: web.Request) -> web.Response:
        await self._record(request)
        settings = {"n_ctx": self.max_model_len}
        return web.json_response({"default_generation_settings": settings, "total_slots": self.total_slots})

    async def _apply_template(self, request: web.Request) -> web.Response:
        received = await self._record(request)
        messages = (received.body or {}).get("messages") or []
        prompt = "".join(f"<|{m.get('role')}|>{_text_of(m.get('content'))}\n" for m in messages)
        return web.json_response({"prompt": prompt})

    async def _tokenize(self, request: web.Request) -> web.Response:
        """Deterministic fake tokenizer: one token per 4 characters (llama.cpp and vLLM answer shapes)."""
        received = await self._record(request)
        if self.tokenize_delay:  # a server whose HTTP threads are all busy with streams
            await asyncio.sleep(self.tokenize_delay)
        if self.tokenize_answer is not None:
            return web.json_response(
                self.tokenize_answer, dumps=json.dumps
            )  # stdlib: any int, as a server might
        body = received.body or {}
        text = body.get("content") or body.get("prompt") or _text_of(body.get("messages"))
        tokens = list(range(math.ceil(len(str(text)) / 4)))
        return web.json_response(
            {"tokens": tokens, "count": len(tokens), "max_model_len": self.max_model_len}
        )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return orjson.dumps(content).decode() if content is not None else ""


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


# -- client-side helpers for tests that talk to the proxy --------------------------------------------------------
def messages_body(
    text: str = "Say hi.", *, stream: bool = False, model: str = "claude-opus-5-5", **extra: Any
) -> dict:
    """A minimal valid Anthropic Messages request."""
    return {
        "model": model,
        "max_tokens": 256,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def sse_events(raw: bytes) -> list[dict]:
    """The JSON payloads of an Anthropic SSE body, in order (each has its `type`)."""
    from proxy.sse import SSEDecoder

    decoder = SSEDecoder()
    events = decoder.feed(raw) + decoder.flush()
    return [orjson.loads(e.data) for e in events]


async def wait_until(predicate: Any, timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll (bounded) until `predicate()` holds; returns the final value for the caller to assert."""
    for _ in range(int(timeout / step)):
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


async def probe(fake: FakeBackend, **config: Any) -> Any:
    """What the proxy's start-up probe finds at `fake` (a BackendInfo), with these Config fields."""
    from proxy.config import Config  # the fake itself needs no proxy code
    from proxy.upstream import Upstream

    upstream = Upstream(Config(upstream=fake.url, **config))
    try:
        return await upstream.probe()
    finally:
        await upstream.close()
