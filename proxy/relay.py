"""Streaming I/O around the pure StreamTranslator (Anthropic-format backends: see passthrough.py).

The HTTP status can only be chosen once, so `relay_stream` waits a short grace period for the backend's headers:
early failures (429, 529, context overflow) keep their real status. After that it commits 200 and keeps Claude Code
alive with `ping` events while the backend prefills or the request queues (Claude Code drops a connection after
5 minutes without bytes). From then on every failure becomes a terminal `event: error`.

Garbage from the backend is handled by `BackendStream` (proxy/translate/backend_stream.py).
A client that goes away (write fails, or the transport closes while we wait) closes the backend connection at once
and frees the slot, so a single-slot llama.cpp server stops generating for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from proxy.answers import read_answer
from proxy.config import Config
from proxy.errors import AnthropicError
from proxy.pending_call import PendingCall
from proxy.shutdown import SHUTDOWN, Shutdown
from proxy.silence import SilenceWatch
from proxy.sse import encode_events
from proxy.translate.backend_stream import BackendStream
from proxy.translate.chunks import completion_chunk
from proxy.upstream import Upstream, answer_object, forwarded_headers, malformed_response

if TYPE_CHECKING:
    from proxy.requestlog import RequestLog
    from proxy.translate.stream import StreamTranslator

logger = logging.getLogger(__name__)

HEADER_GRACE = (
    2.0  # seconds to wait for the backend's headers before committing 200 (capped by ping_interval)
)
DISCONNECT_TICK = 0.5  # seconds between client-still-there checks while the backend is silent
MIN_TICK = 0.05  # floor for the tick, so that a zero ping_interval cannot spin the event loop
CLIENT_GONE_STATUS = 499  # logged (never sent) when the client disconnected first
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class SSEResponse(web.StreamResponse):
    """A stream whose headers go out with its first events, in one write instead of two (aiohttp >= 3.10 buffers
    them when asked to; older versions send them at once). Safe here because the relay writes right after
    `prepare`: message_start at once when the backend is slow, everything together when it is fast."""

    _send_headers_immediately = False


class ClientGone(Exception):
    """The client closed its connection: stop quietly and cancel the backend request."""


def silence_tick(config: Config) -> float:
    """How often a silent wait wakes up: to ping on time and to notice a vanished client quickly."""
    return max(MIN_TICK, min(config.ping_interval, DISCONNECT_TICK))


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class Writer:
    """Writes to the client, notes the first content delta, pings when silent, notices a vanished client.

    Events are queued and go out in one write when the relay is about to wait (`flush`) or at the end
    (`finish`, together with the end of the chunked body): nothing sits in the queue while we wait, so latency
    is unchanged, and a backend whose answer is already buffered costs one socket write instead of three."""

    def __init__(
        self, request: web.Request, response: web.StreamResponse, log: RequestLog, config: Config
    ) -> None:
        self.request, self.response, self.log = request, response, log
        self.ping_interval = config.ping_interval
        self.loop = asyncio.get_running_loop()
        self.last_write = self.loop.time()
        self._queued: list[bytes] = []
        self.shutdown: Shutdown | None = request.app.get(SHUTDOWN)

    async def prepare(self) -> None:
        """Commit the status and headers (aiohttp sends them with the first bytes of the body)."""
        try:
            await self.response.prepare(self.request)
        except ConnectionError as exc:
            raise ClientGone() from exc

    async def write(self, data: bytes) -> None:
        try:
            await self.response.write(data)
        except ConnectionError as exc:  # aiohttp's ClientConnectionResetError is a ConnectionResetError
            raise ClientGone() from exc
        self.last_write = self.loop.time()

    def queue(self, events: list[dict]) -> None:
        if not events:
            return
        if self.log.ttft_ms is None and any(e["type"] == "content_block_delta" for e in events):
            self.log.mark_first_token()
        if events[-1]["type"] == "error":
            error = events[-1]["error"]
            self.log.error_type, self.log.error_message = error["type"], error["message"]
        self._queued.append(encode_events(events))

    async def flush(self) -> None:
        if self._queued:
            data = b"".join(self._queued)
            self._queued.clear()
            await self.write(data)

    async def send(self, events: list[dict]) -> None:
        self.queue(events)
        await self.flush()

    async def finish(self) -> None:
        """Whatever is queued plus the end of the body, in one write."""
        data = b"".join(self._queued)
        self._queued.clear()
        try:
            await self.response.write_eof(data)
        except ConnectionError as exc:
            raise ClientGone() from exc

    async def idle(self, ping: Callable[[], list[dict]] | None) -> None:
        """Called while the backend is silent: fail fast if the client left or the proxy stops, ping every
        ping_interval."""
        if client_gone(self.request):
            raise ClientGone()
        if self.shutdown is not None:
            self.shutdown.check()
        if ping is not None and self.loop.time() - self.last_write >= self.ping_interval:
            await self.send(ping())


async def body_chunks(
    response: aiohttp.ClientResponse,
    upstream: Upstream,
    writer: Writer,
    ping: Callable[[], list[dict]] | None,
) -> AsyncIterator[bytes]:
    """The backend's body as it arrives; silence longer than read_timeout -> 504 timeout_error."""
    config = upstream.config
    watch = SilenceWatch(writer.loop, silence_tick(config))
    content, shutdown = response.content, writer.shutdown
    try:
        while True:
            if content.at_eof():
                return
            try:  # what is buffered already needs no wait (with a fast backend: nearly every read)
                data = content.read_nowait()
            except Exception as exc:
                raise upstream.map_exception(exc, after_headers=True) from exc
            if data:
                watch.last_data = writer.loop.time()
                if shutdown is not None:
                    shutdown.check()
                yield data
                continue
            await writer.flush()  # about to wait: what is queued goes out first
            try:
                with watch:
                    data = await content.readany()
            except asyncio.CancelledError:
                if not watch.quiet():
                    raise
                if writer.loop.time() - watch.last_data >= config.read_timeout:
                    raise upstream.map_exception(TimeoutError()) from None
                await writer.idle(ping)
                continue
            except Exception as exc:
                raise upstream.map_exception(exc, after_headers=True) from exc
            if not data:
                return
            watch.last_data = writer.loop.time()
            yield data
    finally:
        watch.close()


def completion_as_chunk(completion: dict) -> dict:
    """A whole chat.completion (a backend that ignored `stream: true`) as one equivalent stream chunk
    (`completion_chunk`: the same content the non-streaming translation reads)."""
    chunk = completion_chunk(completion)
    if chunk is None:
        raise malformed_response()
    return chunk


async def _check_answer(upstream: Upstream, response: aiohttp.ClientResponse) -> dict | None:
    """Raise the mapped error for an error answer; a JSON completion becomes one chunk; None means SSE follows."""
    if response.status >= 400:
        raise await upstream.read_error(response)
    if not response.content_type.startswith("application/json"):
        return None
    try:
        raw = await read_answer(response)
    except Exception as exc:
        raise upstream.map_exception(exc, after_headers=True) from exc
    return completion_as_chunk(answer_object(raw))


async def _pump(
    response: aiohttp.ClientResponse, upstream: Upstream, translator: StreamTranslator, writer: Writer
) -> bool:
    """OpenAI SSE -> translator -> client, one write per network read. True when the backend body ended cleanly."""
    stream = BackendStream(translator)
    async with contextlib.aclosing(body_chunks(response, upstream, writer, translator.ping)) as chunks:
        async for data in chunks:
            writer.queue(stream.feed(data))
            if stream.done or translator.done:
                return stream.done
    writer.queue(stream.end_of_body())
    return True


async def relay_stream(
    request: web.Request,
    upstream: Upstream,
    payload: bytes,
    translator: StreamTranslator,
    config: Config,
    log: RequestLog,
    extra_headers: Mapping[str, str],
) -> web.StreamResponse:
    """Stream one translated request (`payload`: the serialized OpenAI body). Takes the backend slot itself
    (do not wrap it in `upstream.slot()`), so a queued request already gets pings. Raises AnthropicError only
    before the 200 is committed."""
    log.stream = True
    headers = {"Content-Type": "application/json", **forwarded_headers(request.headers, config)}
    pending = PendingCall(upstream, "/chat/completions", payload, headers)
    abort = True
    response: web.StreamResponse | None = None
    try:
        early_chunk: dict | None = None
        answered = await pending.wait(min(HEADER_GRACE, config.ping_interval))
        if answered:  # within the grace period errors keep their HTTP status
            early_chunk = await _check_answer(upstream, pending.result())
        response = SSEResponse(status=200, headers={**SSE_HEADERS, **extra_headers})
        writer = Writer(request, response, log, config)
        await writer.prepare()
        try:
            writer.queue(translator.start())
            if not answered:
                await writer.flush()  # the backend is slow: message_start goes out now, pings follow

                async def ping_while_waiting() -> None:
                    await writer.idle(translator.ping)

                backend = await pending.wait_with_ticks(silence_tick(config), ping_while_waiting)
                early_chunk = await _check_answer(upstream, backend)
            if early_chunk is not None:
                writer.queue(translator.feed(early_chunk) + translator.finish())
                abort = False
            else:
                abort = not await _pump(pending.response, upstream, translator, writer)  # type: ignore[arg-type]
        except AnthropicError as err:
            writer.queue(translator.fail(err.error_type, err.message))
        except ClientGone:
            raise
        except Exception as exc:  # a bug of ours after the commit: still end the stream with a clean error
            logger.exception("stream relay failed")
            writer.queue(translator.fail("api_error", f"internal proxy error ({type(exc).__name__})"))
        _record_usage(log, translator)
        await writer.finish()
        return response
    except ClientGone:
        log.status, log.error_type = CLIENT_GONE_STATUS, "client_disconnected"
        return response or web.Response(status=CLIENT_GONE_STATUS)
    finally:
        await pending.close(abort=abort)


def _record_usage(log: RequestLog, translator: StreamTranslator) -> None:
    """Token counts only when the backend reported them: the proxy's own estimate (message_start's provisional
    count, or an output of 0 on a stream cut after content went out) is no measurement for logs and metrics."""
    if translator.backend_reported_usage:
        log.record_usage(translator.usage)
    log.problems.extend(translator.problems)
