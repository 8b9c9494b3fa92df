"""A zero-latency OpenAI-format backend for the proxy benchmark.

It answers every `POST .../chat/completions` with the same pre-encoded 20-chunk stream (role chunk, text
fragments, one tool call in fragments, finish chunk, usage chunk, `[DONE]`), so that the benchmark measures
the proxy and not the backend. A raw asyncio protocol (uvloop when installed) with a minimal HTTP/1.1 parser
is used instead of a web framework because a framework's per-request cost would be of the same order as the
proxy overhead being measured. Run it as its own process: `python -m bench.fast_backend --port 0` prints
`LISTENING <port>` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections import deque
from dataclasses import dataclass

import orjson

from bench.fastloop import install_fast_loop

MODEL = "bench-model"
TEXT_FRAGMENTS = ["I'll ", "read ", "the ", "file ", "first ", "to ", "see ", "it."]
TOOL_ARGUMENT_FRAGMENTS = ['{"file', '_path"', ': "/wor', "kspace/", "project/", "hello", '.py"}']
TOOL_NAME = "Read"
USAGE = {"prompt_tokens": 12000, "completion_tokens": 40, "total_tokens": 12040}


def _chunk(delta: dict, finish_reason: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    chunk: dict = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1764072000,
        "model": MODEL,
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def stream_chunks() -> list[dict]:
    """The 19 JSON chunks of one answer (the 20th SSE event is `[DONE]`)."""
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": text}) for text in TEXT_FRAGMENTS]
    call_head = {
        "index": 0,
        "id": "call_bench0",
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": ""},
    }
    chunks.append(_chunk({"tool_calls": [call_head]}))
    chunks += [
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
        for part in TOOL_ARGUMENT_FRAGMENTS
    ]
    chunks.append(_chunk({}, finish_reason="tool_calls"))
    chunks.append(_chunk({}, usage=USAGE))
    return chunks


EVENTS_PER_ANSWER = len(stream_chunks()) + 1  # the SSE events of one streamed answer, `[DONE]` included


def completion() -> dict:
    """The same answer as one non-streaming completion."""
    arguments = "".join(TOOL_ARGUMENT_FRAGMENTS)
    message = {
        "role": "assistant",
        "content": "".join(TEXT_FRAGMENTS),
        "tool_calls": [
            {"id": "call_bench0", "type": "function", "function": {"name": TOOL_NAME, "arguments": arguments}}
        ],
    }
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764072000,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": USAGE,
    }


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _json_response(status: bytes, body: dict) -> bytes:
    payload = orjson.dumps(body)
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
        status,
        len(payload),
    )
    return head + payload


def stream_response_parts() -> list[bytes]:
    """The streaming HTTP response in the pieces a token-by-token server writes: the head with the first event,
    each further event as its own HTTP chunk (like vLLM's), the last one with the end of the body."""
    events = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in stream_chunks()] + [b"data: [DONE]\n\n"]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
    parts = [_http_chunk(event) for event in events]
    return [head + parts[0], *parts[1:-1], parts[-1] + b"0\r\n\r\n"]


def encode_stream_response() -> bytes:
    """The whole streaming HTTP response at once (what a server with the answer ready writes)."""
    return b"".join(stream_response_parts())


@dataclass(frozen=True)
class Responses:
    """Every answer pre-encoded once: the server only copies bytes."""

    stream: bytes
    stream_parts: list[bytes]  # the same stream, one event per write (`--pace-ms`)
    completion: bytes
    models: bytes
    health: bytes
    not_found: bytes
    bad_request: bytes


def build_responses() -> Responses:
    models = {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "owned_by": "bench", "max_model_len": 131072}],
    }
    error = {"error": {"message": "not found", "type": "not_found_error", "code": 404}}
    bad = {"error": {"message": "malformed HTTP request", "type": "invalid_request_error", "code": 400}}
    return Responses(
        stream=encode_stream_response(),
        stream_parts=stream_response_parts(),
        completion=_json_response(b"200 OK", completion()),
        models=_json_response(b"200 OK", models),
        health=_json_response(b"200 OK", {"status": "ok"}),
        not_found=_json_response(b"404 Not Found", error),
        bad_request=_json_response(b"400 Bad Request", bad),
    )


class ParseError(ValueError):
    """The request is not HTTP/1.1 this server understands."""


@dataclass
class Request:
    method: bytes
    path: bytes
    body: bytes


def parse_request(buffer: bytearray) -> tuple[Request, int] | None:
    """One complete request from the start of `buffer` and its length in bytes, or None when incomplete.

    Supports Content-Length and chunked request bodies: enough for aiohttp, httpx and the OpenAI SDK.
    """
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buffer) > 65536:
            raise ParseError("header too large")
        return None
    lines = bytes(buffer[:head_end]).split(b"\r\n")
    try:
        method, target, _version = lines[0].split(b" ", 2)
    except ValueError as exc:
        raise ParseError("bad request line") from exc
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    start = head_end + 4
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return _parse_chunked(buffer, start, method, target)
    length = int(headers.get(b"content-length", b"0") or 0)
    if len(buffer) < start + length:
        return None
    return Request(method, target.split(b"?", 1)[0], bytes(buffer[start : start + length])), start + length


def _parse_chunked(buffer: bytearray, pos: int, method: bytes, target: bytes) -> tuple[Request, int] | None:
    parts: list[bytes] = []
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", pos)  # no trailers: the empty line ends the body
            if trailer_end < 0:
                return None
            return Request(method, target.split(b"?", 1)[0], b"".join(parts)), trailer_end + 2
        if len(buffer) < pos + size + 2:
            return None
        parts.append(bytes(buffer[pos : pos + size]))
        pos += size + 2


def route(request: Request, responses: Responses) -> bytes:
    """Pick the pre-encoded answer for a request."""
    if request.method == b"POST" and request.path.endswith(b"/chat/completions"):
        body = request.body
        wants_stream = b'"stream":true' in body or b'"stream": true' in body
        return responses.stream if wants_stream else responses.completion
    if request.method == b"GET" and request.path.endswith(b"/models"):
        return responses.models
    if request.method == b"GET" and request.path == b"/health":
        return responses.health
    return responses.not_found


class BackendProtocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 connection that answers each complete request at once, or, with `pace` seconds, writes
    a stream's events one by one that far apart, as a model generating token by token does (the proxy then reads
    every event on its own)."""

    def __init__(self, responses: Responses, pace: float = 0.0) -> None:
        self.responses = responses
        self.pace = pace
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.free_at = 0.0  # loop time when the paced answer being written ends (what follows waits for it)
        self.pending: deque[tuple[float, bytes]] = deque()  # (when, data) not written yet, in order

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        assert self.transport is not None
        while self.buffer:
            try:
                parsed = parse_request(self.buffer)
            except (ParseError, ValueError):
                self.transport.write(self.responses.bad_request)
                self.transport.close()
                return
            if parsed is None:
                return
            request, consumed = parsed
            del self.buffer[:consumed]
            answer = route(request, self.responses)
            if self.pace and answer is self.responses.stream:
                self._write_paced(self.responses.stream_parts)
            elif self.pace:
                self._write_at(self.free_at, answer)
            else:
                self.transport.write(answer)

    def _write_paced(self, parts: list[bytes]) -> None:
        start = max(self.free_at, asyncio.get_running_loop().time())
        for number, part in enumerate(parts):
            self._write_at(start + number * self.pace, part)
        self.free_at = start + (len(parts) - 1) * self.pace

    def _write_at(self, when: float, data: bytes) -> None:
        """Writes go out in the order they were asked for (times never decrease), each not before `when`."""
        loop = asyncio.get_running_loop()
        if not self.pending and when <= loop.time():
            self._write(data)
            return
        self.pending.append((when, data))
        if len(self.pending) == 1:
            loop.call_at(when, self._drain)

    def _drain(self) -> None:
        """Called at the first pending write's time: it goes out, then whatever else is due by now."""
        loop = asyncio.get_running_loop()
        self._write(self.pending.popleft()[1])
        while self.pending and self.pending[0][0] <= loop.time():
            self._write(self.pending.popleft()[1])
        if self.pending:
            loop.call_at(self.pending[0][0], self._drain)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(host: str, port: int, pace: float = 0.0) -> None:
    """Serve until SIGINT/SIGTERM; print the bound port for the parent process."""
    loop = asyncio.get_running_loop()
    responses = build_responses()
    server = await loop.create_server(lambda: BackendProtocol(responses, pace), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port (printed as LISTENING <port>)"
    )
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=0.0,
        help="write a stream's events this many ms apart, one per write (0: the whole answer at once)",
    )
    args = parser.parse_args(argv)
    install_fast_loop()
    try:
        asyncio.run(serve(args.host, args.port, max(0.0, args.pace_ms) / 1000))
    except OSError as exc:
        sys.exit(f"fast_backend: cannot listen on {args.host}:{args.port}: {exc}")


if __name__ == "__main__":
    main()
