"""Pass-through to a backend that already speaks Anthropic (`--upstream-format anthropic`): bytes in, bytes out.

Only the routed model name may have changed in the body; the answer streams back untouched, with the same
client-disconnect, ping-less silence and read-timeout handling as the translating relay (`proxy.relay`).
"""

from __future__ import annotations

import contextlib

import orjson
from aiohttp import web

from proxy.answers import read_error_body
from proxy.errors import AnthropicError
from proxy.pending_call import PendingCall
from proxy.relay import CLIENT_GONE_STATUS, ClientGone, Writer, body_chunks, client_gone, silence_tick
from proxy.requestlog import RequestLog
from proxy.sse import encode_event
from proxy.translate.backend_errors import backend_error_to_anthropic
from proxy.upstream import Upstream, forwarded_headers

PASSTHROUGH_HEADERS = ("anthropic-version", "anthropic-beta", "content-type")
CLIENT_AUTH_HEADERS = ("x-api-key", "authorization")


def _is_anthropic_error(raw: bytes) -> bool:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict)


async def relay_passthrough(
    request: web.Request, upstream: Upstream, path: str, raw_body: bytes, log: RequestLog
) -> web.StreamResponse:
    """Anthropic-format backend: forward the body and anthropic-* headers, stream the answer through untouched.
    Anthropic-shaped error answers keep their status and body; other errors get the envelope."""
    config = upstream.config
    headers = {h: request.headers[h] for h in PASSTHROUGH_HEADERS if h in request.headers}
    headers.update(forwarded_headers(request.headers, config))
    transparent = not upstream.has_key and config.api_key is None  # the client's own credentials go through
    if transparent:
        headers.update({h: request.headers[h] for h in CLIENT_AUTH_HEADERS if h in request.headers})
    pending = PendingCall(upstream, path, raw_body, headers)
    abort = True
    try:

        async def check_client() -> None:
            if client_gone(request):
                raise ClientGone()

        backend = await pending.wait_with_ticks(silence_tick(config), check_client)
        log.status = backend.status
        if backend.status >= 400:
            try:
                raw = await read_error_body(backend)
            except Exception as exc:
                raise upstream.map_exception(exc, after_headers=True) from exc
            if not _is_anthropic_error(raw):
                raise backend_error_to_anthropic(backend.status, raw, backend.headers)
            abort = False
            return web.Response(
                status=backend.status,
                body=raw,
                content_type="application/json",
                headers={"request-id": log.request_id},
            )
        is_sse = backend.content_type == "text/event-stream"
        response = web.StreamResponse(status=backend.status, headers={"request-id": log.request_id})
        response.content_type = backend.content_type or "application/json"
        if is_sse:
            response.headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        writer = Writer(request, response, log, config)
        await writer.prepare()
        try:
            async with contextlib.aclosing(body_chunks(backend, upstream, writer, None)) as chunks:
                async for data in chunks:
                    if log.ttft_ms is None and (not is_sse or b"content_block_delta" in data):
                        log.mark_first_token()
                    await writer.write(data)
            abort = False
        except AnthropicError as err:
            log.error_type = err.error_type
            if is_sse:
                await writer.write(
                    encode_event({"type": "error", "error": {"type": err.error_type, "message": err.message}})
                )
        await response.write_eof()
        return response
    except ClientGone:
        log.status, log.error_type = CLIENT_GONE_STATUS, "client_disconnected"
        return web.Response(status=CLIENT_GONE_STATUS)
    finally:
        await pending.close(abort=abort)
