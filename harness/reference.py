"""The embedded reference backend: an OpenAI-compatible server that plays the recorded answer of each turn.

`ccbench run` sends every turn through the proxy with an `x-ccbench-turn` header; the proxy forwards it
here and this server answers with that turn's reference content blocks converted to OpenAI format, as a
real server would (streamed text and tool-call argument fragments over several chunks, a usage chunk with
`choices: []`, `data: [DONE]`). Since the answer is the recorded one, every point lost in a reference run is
a translation bug in the proxy, not a model problem.

It also behaves like a real server at the limits: output beyond `max_tokens` is cut (finish_reason
`length`), and generation stops before a requested stop string (finish_reason `stop`, plus vLLM's
`stop_reason` field naming the string, which the proxy may turn into `stop_sequence`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web

TURN_HEADER = "x-ccbench-turn"
REFERENCE_MODEL = "ccbench-reference"
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
TOOL_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")

# A responder turns (turn key, OpenAI request body) into the Anthropic content blocks to answer with.
Responder = Callable[[str, dict], list[dict]]


def count_tokens(text: str) -> int:
    """A deterministic stand-in tokenizer: words and punctuation marks."""
    return len(TOKEN_RE.findall(text))


def cut_after_tokens(text: str, limit: int) -> str:
    """The prefix of `text` holding its first `limit` tokens."""
    matches = list(itertools.islice(TOKEN_RE.finditer(text), limit))
    return text[: matches[-1].end()] if matches else ""


def split_fragments(text: str, parts: int = 3) -> list[str]:
    """Split a string into up to `parts` non-empty pieces (argument fragments, content deltas)."""
    if len(text) <= 1 or parts <= 1:
        return [text]
    step = max(1, -(-len(text) // parts))
    return [text[i : i + step] for i in range(0, len(text), step)]


@dataclass
class Completion:
    """A backend answer in OpenAI terms, before it is rendered as JSON or as chunks."""

    reasoning: str
    content: str
    tool_calls: list[dict]  # [{"id", "type": "function", "function": {"name", "arguments"}}]
    finish_reason: str
    stop_reason: str | None  # vLLM extension: the stop string that ended generation
    prompt_tokens: int
    completion_tokens: int


def _stop_list(body: dict) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop or [] if isinstance(s, str) and s]


def build_completion(blocks: list[dict], body: dict) -> Completion:
    """Anthropic content blocks -> what an OpenAI server would generate for this request."""
    reasoning = "".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking")
    content = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    tool_calls = []
    for n, block in enumerate(b for b in blocks if b.get("type") == "tool_use"):
        call_id = block.get("id") if TOOL_ID_RE.match(str(block.get("id", ""))) else f"call_{n}"
        arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
        tool_calls.append(
            {"id": call_id, "type": "function", "function": {"name": block["name"], "arguments": arguments}}
        )
    finish_reason, stop_reason = ("tool_calls" if tool_calls else "stop"), None
    for stop in _stop_list(body):
        if stop in content:
            content, tool_calls, finish_reason, stop_reason = content[: content.index(stop)], [], "stop", stop
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    arguments_tokens = sum(count_tokens(c["function"]["arguments"]) for c in tool_calls)
    used = count_tokens(reasoning) + count_tokens(content) + arguments_tokens
    if isinstance(limit, int) and used > limit:
        budget = max(0, limit - count_tokens(reasoning))
        content, tool_calls, finish_reason, stop_reason = (
            cut_after_tokens(content, budget),
            [],
            "length",
            None,
        )
        used = min(limit, count_tokens(reasoning) + count_tokens(content))
    prompt = json.dumps([body.get("messages"), body.get("tools")], ensure_ascii=False)
    return Completion(reasoning, content, tool_calls, finish_reason, stop_reason, count_tokens(prompt), used)


def _usage(c: Completion) -> dict:
    total = c.prompt_tokens + c.completion_tokens
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "total_tokens": total}


def completion_json(c: Completion, model: str, completion_id: str) -> dict:
    """The non-streaming /chat/completions body."""
    message: dict = {"role": "assistant", "content": c.content or (None if c.tool_calls else "")}
    if c.reasoning:
        message["reasoning_content"] = c.reasoning
    if c.tool_calls:
        message["tool_calls"] = c.tool_calls
    choice = {"index": 0, "message": message, "finish_reason": c.finish_reason, "logprobs": None}
    if c.stop_reason is not None:
        choice["stop_reason"] = c.stop_reason
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(c),
    }


def completion_chunks(c: Completion, model: str, completion_id: str, include_usage: bool) -> list[dict]:
    """The streamed form: role chunk, reasoning/content pieces, tool-call fragments, finish, usage."""
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra: object) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None, **extra}
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": None,
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"reasoning_content": piece}) for piece in split_fragments(c.reasoning) if piece]
    chunks += [chunk({"content": piece}) for piece in split_fragments(c.content) if piece]
    for index, call in enumerate(c.tool_calls):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        for piece in split_fragments(call["function"]["arguments"]):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    extra = {"stop_reason": c.stop_reason} if c.stop_reason is not None else {}
    chunks.append(chunk({}, c.finish_reason, **extra))
    if include_usage:
        chunks.append(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": _usage(c),
            }
        )
    return chunks


@contextlib.asynccontextmanager
async def serve_on_loopback(app: web.Application, **runner_options: object) -> AsyncIterator[str]:
    """Serve an aiohttp app on 127.0.0.1, a free port, for the duration; yields its root URL."""
    runner = web.AppRunner(app, access_log=None, **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _openai_error(status: int, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return web.json_response(body, status=status)


class LoopbackBackend:
    """An OpenAI-format backend of ours, served on 127.0.0.1 (a free port) while it is open.

    Subclasses build `app()` and may open more resources in `_open` (closed with it)."""

    runner_options: dict = {}

    def __init__(self) -> None:
        self._stack: contextlib.AsyncExitStack | None = None
        self.base_url = ""

    def app(self) -> web.Application:
        raise NotImplementedError

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        """Resources the backend needs besides its server (none by default)."""

    async def start(self) -> str:
        """Listen on 127.0.0.1 (a free port) and return the OpenAI base URL (ending in /v1)."""
        self._stack = contextlib.AsyncExitStack()
        await self._open(self._stack)
        root = await self._stack.enter_async_context(serve_on_loopback(self.app(), **self.runner_options))
        self.base_url = f"{root}/v1"
        return self.base_url

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ReferenceBackend(LoopbackBackend):
    """The aiohttp server; `answers` maps turn keys to content blocks, or pass a `responder` callable."""

    def __init__(
        self,
        answers: dict[str, list[dict]] | None = None,
        *,
        responder: Responder | None = None,
        model: str = REFERENCE_MODEL,
    ) -> None:
        super().__init__()
        self.answers = dict(answers or {})
        self.responder = responder
        self.model = model
        self.requests: list[dict] = []  # every chat request received (for tests and debugging)
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "ccbench"}]}
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def _blocks(self, key: str, body: dict) -> list[dict] | None:
        if self.responder is not None:
            return self.responder(key, body)
        return self.answers.get(key)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _openai_error(400, "request body is not JSON")
        self.requests.append(body)
        key = request.headers.get(TURN_HEADER, "")
        blocks = self._blocks(key, body)
        if blocks is None:
            return _openai_error(
                404, f"the reference backend has no answer for turn {key!r} ({TURN_HEADER} header)"
            )
        return await answer_completion(request, body, blocks, f"chatcmpl-ref{next(self._ids)}", self.model)


async def answer_completion(
    request: web.Request, body: dict, blocks: list[dict], completion_id: str, default_model: str
) -> web.StreamResponse:
    """Answer an OpenAI chat request with scripted `blocks`: one JSON completion, or the same as an SSE stream
    (with a usage chunk when `stream_options.include_usage` asks for it) ending in `[DONE]`."""
    completion = build_completion(blocks, body)
    model = str(body.get("model") or default_model)
    if not body.get("stream"):
        return web.json_response(completion_json(completion, model, completion_id))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await response.prepare(request)
    for item in completion_chunks(completion, model, completion_id, include_usage):
        await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
