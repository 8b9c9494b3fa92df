"""The floor under any aiohttp proxy: a relay with the proxy's HTTP stack and none of its work.

It does what `ccbench proxy` does on the network for one streaming `/v1/messages` request, with the same
libraries and settings: an aiohttp server reads the 50 KB body; the proxy's own client session
(`proxy.upstream.Upstream`'s, with its connector, timeouts and headers) posts it to the backend's
`/chat/completions` over a kept-alive connection and reads the streamed answer as it arrives; and the client
gets a complete Anthropic stream back (the proxy's own translation of the benchmark backend's answer, encoded
once at start) in one write at the end, as the proxy writes it when the whole answer arrives in one read. It
parses no JSON, translates nothing, checks nothing, logs nothing.

So in a benchmark run, `ccbench`'s CPU per request minus this relay's is what the proxy's own work costs
(parsing, translating, serialising, the stream state machine, logging, metrics), and this relay's ratio to
the direct call is the most any proxy built on aiohttp could reach on that machine. Run it as its own
process: `python -m bench.floor_relay --upstream URL/v1 --port 0` prints `LISTENING <port>`.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from aiohttp import web

from bench.fast_backend import stream_chunks
from harness.recorder import wait_for_stop_signal
from proxy.app import tune_gc
from proxy.config import Config
from proxy.sse import encode_events
from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator
from proxy.upstream import Upstream

UPSTREAM = web.AppKey("upstream", Upstream)
ANSWER = web.AppKey("answer", bytes)
MAX_CONCURRENCY = 512  # what the benchmark starts `ccbench proxy` with
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def encoded_answer() -> bytes:
    """The Anthropic stream `ccbench proxy` sends for the benchmark backend's answer, from its own translator."""
    ctx = ResponseContext(
        requested_model="claude-sonnet-4-5",
        tool_names={},
        tool_schemas={},
        stop_sequences=[],
        message_id="msg_floor",
        input_tokens=12000,
    )
    translator = StreamTranslator(ctx)
    events = translator.start()
    for chunk in stream_chunks():
        events += translator.feed(chunk)
    return encode_events(events + translator.finish())


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    upstream = request.app[UPSTREAM]
    headers = {"Content-Type": "application/json"}
    async with upstream.session.post(upstream.url("/chat/completions"), data=body, headers=headers) as answer:
        response = web.StreamResponse(status=200, headers=SSE_HEADERS)
        await response.prepare(request)
        async for _ in answer.content.iter_any():  # read as it arrives, as the proxy does
            pass
        await response.write_eof(request.app[ANSWER])
    return response


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve(upstream: str, host: str, port: int) -> None:
    app = web.Application()
    app.router.add_post("/v1/messages", relay)
    app.router.add_get("/health", health)
    app[UPSTREAM] = Upstream(Config(upstream=upstream, max_concurrency=MAX_CONCURRENCY))
    app[ANSWER] = encoded_answer()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    listening = socket.create_server((host, port), backlog=1024)
    await web.SockSite(runner, listening, backlog=1024).start()
    print(f"LISTENING {listening.getsockname()[1]}", flush=True)
    try:
        await wait_for_stop_signal()
    finally:
        await app[UPSTREAM].close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upstream", required=True, help="the backend's base URL, e.g. http://127.0.0.1:8000/v1"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port (printed as LISTENING <port>)"
    )
    args = parser.parse_args(argv)
    tune_gc()  # the proxy's collector settings, so that the difference is the proxy's work alone
    try:
        asyncio.run(serve(args.upstream, args.host, args.port))
    except OSError as exc:
        sys.exit(f"floor_relay: cannot listen on {args.host}:{args.port}: {exc}")


if __name__ == "__main__":
    main()
