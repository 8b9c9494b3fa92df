"""The recording proxy behind `ccbench record`.

Claude Code points ANTHROPIC_BASE_URL here; every exchange goes through unchanged to the upstream, streams
are written to the client chunk by chunk as they arrive, and each finished exchange is appended to the
cassette (redacted, optionally normalised) and the file is rewritten atomically, so a killed recorder
loses nothing already answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from harness.cassette import (
    Interaction,
    assemble_yaml,
    interaction_yaml,
    request_class,
    write_atomic,
)
from harness.redact import Normalizer, redact_headers, redact_text
from proxy.errors import error_body, new_request_id
from proxy.sse import SSEDecoder

log = logging.getLogger("ccbench.record")

# Transport-level headers: they describe one hop, not the exchange, and aiohttp sets its own.
HOP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding", "upgrade"}
)
RESPONSE_DROP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)
NOT_RECORDED = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
_CLAUDE_VERSION = re.compile(r"claude-cli/([0-9][\w.+-]*)")


@dataclass
class RawExchange:
    """One finished exchange exactly as it crossed the recorder (nothing redacted yet)."""

    method: str
    uri: str
    request_headers: dict[str, str]  # lower-case names
    request_body: bytes
    status: int
    reason: str
    response_headers: dict[str, str]
    response_body: bytes
    event_times_ms: list[float] = field(default_factory=list)
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    started_ms: float = 0.0  # offset from the recorder start, to order overlapping requests


def claude_code_version(user_agent: str) -> str | None:
    match = _CLAUDE_VERSION.search(user_agent or "")
    return match.group(1) if match else None


def _recordable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in NOT_RECORDED}


def _clean(text: str, normalizer: Normalizer | None) -> str:
    text = redact_text(text)
    return normalizer.normalize_text(text) if normalizer else text


def build_interaction(raw: RawExchange, seq: int, normalizer: Normalizer | None) -> Interaction:
    """Redact (always) and normalise (when a Normalizer is given) one exchange into a cassette Interaction."""
    request_headers = redact_headers(_recordable(raw.request_headers))
    response_headers = redact_headers(_recordable(raw.response_headers))
    if normalizer:
        request_headers = normalizer.normalize_headers(request_headers)
        response_headers = normalizer.normalize_headers(response_headers)
    request_text = (
        _clean(raw.request_body.decode("utf-8", "replace"), normalizer) if raw.request_body else None
    )
    try:
        parsed = json.loads(request_text) if request_text else None
    except json.JSONDecodeError:
        parsed = None
    request_body = parsed if isinstance(parsed, dict) else None
    path = raw.uri.split("?", 1)[0]
    meta: dict = {
        "request_class": request_class(path, raw.request_headers, request_body),
        "session_id": request_headers.get("x-claude-code-session-id"),
        "stream": raw.response_headers.get("content-type", "").startswith("text/event-stream"),
        "event_times_ms": [round(t, 3) for t in raw.event_times_ms],
        "ttft_ms": None if raw.ttft_ms is None else round(raw.ttft_ms, 3),
        "duration_ms": round(raw.duration_ms, 3),
        "started_ms": round(raw.started_ms, 3),
    }
    return Interaction(
        seq=seq,
        method=raw.method,
        uri=_clean(raw.uri, normalizer),
        request_headers=request_headers,
        request_body=request_body,
        status=raw.status,
        response_headers=response_headers,
        response_body=_clean(raw.response_body.decode("utf-8", "replace"), normalizer),
        meta=meta,
        request_text=request_text,
        status_message=raw.reason,
    )


class CassetteRecorder:
    """Appends exchanges to one cassette file, rewriting it atomically after each one."""

    def __init__(self, path: Path, *, meta: dict | None = None, normalizer: Normalizer | None = None) -> None:
        self.path = Path(path)
        self.meta = {"recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **(meta or {})}
        self.normalizer = normalizer
        self.interactions: list[Interaction] = []
        self._fragments: list[str] = []
        self._lock = asyncio.Lock()

    def record(self, raw: RawExchange) -> Interaction:
        """Add one exchange and write the file (synchronous; the server calls it under a lock in a thread)."""
        version = claude_code_version(raw.request_headers.get("user-agent", ""))
        if version and "claude_code_version" not in self.meta:
            self.meta["claude_code_version"] = version
        interaction = build_interaction(raw, len(self.interactions), self.normalizer)
        self.interactions.append(interaction)
        self._fragments.append(interaction_yaml(interaction))
        self.flush()
        return interaction

    def flush(self) -> None:
        write_atomic(self.path, assemble_yaml(self.meta, self._fragments))

    async def record_async(self, raw: RawExchange) -> Interaction:
        async with self._lock:
            return await asyncio.to_thread(self.record, raw)


def _forward_headers(headers: dict[str, str]) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k not in HOP_HEADERS}
    out["accept-encoding"] = "identity"  # keep the recorded bytes exactly what the upstream produced
    return out


def _overloaded(message: str) -> web.Response:
    request_id = new_request_id()
    return web.json_response(
        error_body("overloaded_error", message, request_id), status=529, headers={"request-id": request_id}
    )


@dataclass
class StreamTap:
    """Keeps the bytes passed to the client and times each complete SSE event (offsets from `t0`)."""

    t0: float
    sse: bool
    chunks: list[bytes] = field(default_factory=list)
    event_times_ms: list[float] = field(default_factory=list)
    ttft_ms: float | None = None
    _decoder: SSEDecoder = field(default_factory=SSEDecoder)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000

    def feed(self, chunk: bytes) -> None:
        now = self.elapsed_ms()
        self.chunks.append(chunk)
        for event in self._decoder.feed(chunk) if self.sse else []:
            self.event_times_ms.append(now)
            if self.ttft_ms is None and event.event == "content_block_delta":
                self.ttft_ms = now

    def close(self) -> None:
        if self.sse:  # a last event without its blank line still counts
            self.event_times_ms.extend(self.elapsed_ms() for _ in self._decoder.flush())


async def _record_or_complain(recorder: CassetteRecorder, raw: RawExchange) -> None:
    """A cassette that cannot be written (disk full, permissions) is reported loudly; the client is still answered."""
    try:
        interaction = await recorder.record_async(raw)
    except OSError as exc:
        log.error("cannot write the cassette %s: %s (exchange NOT recorded)", recorder.path, exc)
        return
    log.info("recorded #%d %s %s -> %d", interaction.seq, raw.method, raw.uri, raw.status)


def _client_response(upstream_response: aiohttp.ClientResponse) -> web.StreamResponse:
    response = web.StreamResponse(status=upstream_response.status, reason=upstream_response.reason)
    for name, value in upstream_response.headers.items():
        if name.lower() not in RESPONSE_DROP:
            response.headers.add(name, value)
    return response


def build_recorder_app(recorder: CassetteRecorder, upstream: str) -> web.Application:
    """A catch-all pass-through app: any method, any path, forwarded to `upstream` (an Anthropic root URL)."""
    base = upstream.rstrip("/")
    started = time.perf_counter()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application):
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=900)
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=True) as session:
            app[session_key] = session
            yield

    async def relay(request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            upstream_response = await app[session_key].request(
                request.method, base + request.path_qs, data=body or None, headers=_forward_headers(headers),
                allow_redirects=False,
            )  # fmt: skip
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("upstream %s unreachable: %s", base, exc)
            return _overloaded(f"ccbench record: upstream {base} is unreachable ({exc.__class__.__name__})")
        async with upstream_response:
            response_headers = {k.lower(): v for k, v in upstream_response.headers.items()}
            tap = StreamTap(t0, sse=response_headers.get("content-type", "").startswith("text/event-stream"))
            response = _client_response(upstream_response)
            try:
                await response.prepare(request)
                async for chunk in upstream_response.content.iter_any():
                    tap.feed(chunk)
                    await response.write(chunk)
                tap.close()
                raw = RawExchange(
                    method=request.method, uri=str(request.url), request_headers=headers, request_body=body,
                    status=upstream_response.status, reason=upstream_response.reason or "",
                    response_headers=response_headers, response_body=b"".join(tap.chunks),
                    event_times_ms=tap.event_times_ms, ttft_ms=tap.ttft_ms, duration_ms=tap.elapsed_ms(),
                    started_ms=(t0 - started) * 1000,
                )  # fmt: skip
                # on disk before the client sees the end of the response: a kill loses nothing answered
                await _record_or_complain(recorder, raw)
                await response.write_eof()
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                # a cut stream (either side) is not a faithful exchange: it is not recorded
                log.warning("%s %s not recorded: stream cut (%s)", request.method, request.path, exc)
                return response
        return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


UPSTREAM_PROBE_SECONDS = 5.0


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner and the bound port (port 0 picks a free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    bound = server.sockets[0].getsockname()[1] if server and server.sockets else port
    return runner, bound


async def wait_for_stop_signal() -> None:
    """Return on the first SIGINT or SIGTERM (a clean stop instead of a KeyboardInterrupt traceback)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def probe_upstream(upstream: str, timeout: float = UPSTREAM_PROBE_SECONDS) -> str | None:
    """A warning when nothing answers at the upstream (a typo, a server not started yet), else None.

    Any HTTP answer counts (a 401 or 404 too: the recorder passes everything through). Only a warning: the
    backend may come up after the recorder, and until it does each request gets the recorder's 529."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(upstream + "/v1/models", allow_redirects=False),
        ):
            return None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        reason = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
        return (
            f"warning: nothing answers at --upstream {upstream} ({reason}); until it does, every request gets "
            "HTTP 529 and nothing is recorded: check the URL, or start the server"
        )


async def serve_recorder(
    recorder: CassetteRecorder,
    upstream: str,
    host: str,
    port: int,
    announce: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> None:
    """Run until SIGINT/SIGTERM; prints the Claude Code setup line on start, and a warning when nothing answers
    at the upstream."""
    runner, bound = await start_site(build_recorder_app(recorder, upstream), host, port)
    recorder.flush()  # an empty but valid cassette exists from the start
    announce(f"Recording {upstream} into {recorder.path}")
    announce(f"export ANTHROPIC_BASE_URL=http://{host}:{bound}")

    async def check_upstream() -> None:
        problem = await probe_upstream(upstream)
        if problem:
            warn(problem)

    # runs once the stop signals are handled (the first await below), while requests are already served
    probe = asyncio.ensure_future(check_upstream())
    try:
        await wait_for_stop_signal()
    finally:
        probe.cancel()
        await runner.cleanup()
        announce(f"Stopped: {len(recorder.interactions)} interactions in {recorder.path}")
