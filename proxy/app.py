"""The aiohttp application: routes, middlewares (request-id, auth, error envelope), start-up and shutdown.

Everything a client can get wrong, or that breaks inside, comes back in the Anthropic error envelope with a
`request-id` header: Claude Code and the SDKs act on `error.type` and the status, never on a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from proxy.banner import banner_text
from proxy.config import Config
from proxy.errors import AnthropicError, error_body, error_type_for_status, new_request_id
from proxy.handlers import (
    REQUEST_ID,
    REQUEST_LOG,
    STATE,
    ProxyState,
    handle_count_tokens,
    handle_messages,
    json_response,
)
from proxy.info_routes import handle_health, handle_metrics, handle_model, handle_models, handle_root
from proxy.metrics import (
    GAUGE_REFRESH,
    MULTIPROC_ENV,
    multiprocess_dir,
)
from proxy.requestbody import too_large
from proxy.requestlog import RequestLog
from proxy.shutdown import SHUTDOWN, Shutdown, drain_on_shutdown, runner_shutdown_timeout
from proxy.upstream import Upstream
from proxy.workers import LISTEN_BACKLOG, run_workers

__all__ = ["REQUEST_ID", "REQUEST_LOG", "STATE", "build_app", "serve"]

log = logging.getLogger("ccbench.proxy")
access_log = logging.getLogger("ccbench.proxy.requests")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/health", "/", "/api/hello"})  # answered without a key: probes and health checks
OTHER_ROUTE = "other"  # the route label of requests no route matched
QUIET_PATHS = OPEN_PATHS | {"/metrics"}  # logged at debug level and not counted: pollers would drown the rest


def error_response(
    status: int, error_type: str, message: str, request_id: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(error_body(error_type, message, request_id), status, headers)


# -- middlewares -------------------------------------------------------------------------------------------------
@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, the key check, one log line, and the Anthropic envelope for every error (ours, aiohttp's,
    unexpected)."""
    request_id = new_request_id()
    request[REQUEST_ID] = request_id
    entry = RequestLog(request_id, request.path, method=request.method)
    request[REQUEST_LOG] = entry
    try:
        check_key(request)
        response = await handler(request)
    except AnthropicError as exc:
        response = error_response(exc.status, exc.error_type, exc.message, request_id, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _from_http_exception(exc, request, request_id)
    except asyncio.CancelledError:
        entry.status, entry.error_type = 499, "client_closed"
        _emit(entry, request)
        raise
    except Exception:
        log.exception("unexpected error in %s %s (%s)", request.method, request.path, request_id)
        response = error_response(
            500, "api_error", f"internal proxy error (request id {request_id})", request_id
        )
    if entry.error_type is None:
        entry.status = response.status
        if response.status >= 400 and isinstance(response, web.Response) and response.body:
            with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError, KeyError):
                error = orjson.loads(response.body)["error"]
                message = error.get("message")
                entry.error_type = error["type"]
                entry.error_message = message if isinstance(message, str) else None
    _emit(entry, request)
    return response


def _from_http_exception(exc: web.HTTPException, request: web.Request, request_id: str) -> web.Response:
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    if exc.status == 404:
        message = f"not found: {request.method} {request.path}"
        if request.path.startswith("/v1/v1/"):  # ANTHROPIC_BASE_URL=http://…:8082/v1
            message += " (ANTHROPIC_BASE_URL must not end in /v1: Claude Code adds /v1/messages itself)"
    elif exc.status == 405:
        message = f"method {request.method} not allowed on {request.path}"
    elif exc.status == 413:
        return error_response(
            413, "request_too_large", too_large(request.app[STATE].config.max_body_bytes).message, request_id
        )
    else:
        message = exc.text or exc.reason
    return error_response(exc.status, error_type_for_status(exc.status), message, request_id, headers)


def _emit(entry: RequestLog, request: web.Request) -> None:
    """The request's log line and its count in the metrics (pollers' successful calls: debug level only)."""
    if request.path in QUIET_PATHS and entry.status < 400:
        if access_log.isEnabledFor(logging.DEBUG):
            access_log.debug("%s", entry.line())
        return
    state = request.app[STATE]
    entry.emit(access_log, state.advised if entry.problems else None)
    resource = request.match_info.route.resource  # the route's pattern: raw paths would be unbounded labels
    state.metrics.observe(entry, resource.canonical if resource is not None else OTHER_ROUTE)


def check_key(request: web.Request) -> None:
    """When a key is configured, require it as `x-api-key` or `Authorization: Bearer` (constant-time compare).
    Called by the envelope middleware before the handler (one middleware layer less on every request)."""
    expected = request.app[STATE].config.api_key
    if expected and request.path not in OPEN_PATHS:
        given = request.headers.get("x-api-key", "")
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not any(hmac.compare_digest(k.encode(), expected.encode()) for k in (given, bearer) if k):
            raise AnthropicError(
                401, "authentication_error", "invalid or missing API key (x-api-key or Bearer)"
            )


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streams included, carries `request-id`."""
    response.headers.setdefault("request-id", request.get(REQUEST_ID) or new_request_id())


# -- application -------------------------------------------------------------------------------------------------
def build_app(config: Config) -> web.Application:
    """The proxy application; the backend session opens on start-up (with the probe) and closes on cleanup."""
    app = web.Application(middlewares=[envelope_middleware], client_max_size=config.max_body_bytes)
    app.cleanup_ctx.append(_upstream_context(config))
    app.on_response_prepare.append(add_request_id)
    app[SHUTDOWN] = Shutdown()
    app.on_shutdown.append(drain_on_shutdown(config.shutdown_grace))
    app.router.add_post("/v1/messages", handle_messages)
    app.router.add_post("/v1/messages/count_tokens", handle_count_tokens)
    app.router.add_get("/v1/models", handle_models)
    app.router.add_get("/v1/models/{model_id}", handle_model)
    app.router.add_get("/health", handle_health)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/", handle_root)
    app.router.add_get("/api/hello", handle_root)
    return app


def _upstream_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        upstream = Upstream(config)
        state = ProxyState(config, upstream)
        app[STATE] = state
        if config.probe_backend:
            await state.probe()
        refresher = asyncio.ensure_future(_refresh_metrics(state)) if multiprocess_dir() else None
        try:
            yield
        finally:
            if refresher is not None:
                refresher.cancel()
            await state.close()

    return context


async def _refresh_metrics(state: ProxyState) -> None:
    """A worker's gauges, kept current for scrapes that another worker answers."""
    while True:
        state.refresh_metrics()
        await asyncio.sleep(GAUGE_REFRESH)


async def serve(config: Config, sock: socket.socket | None = None, show_banner: bool = True) -> None:
    """Run until SIGINT/SIGTERM, after printing the Claude Code set-up lines; in-flight requests get to finish.
    With `sock`, serve on that already-bound socket (a worker of `run`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    app: web.Application | None = None
    first_signal = 0.0

    def on_signal() -> None:
        """The first signal stops the proxy (requests in flight get the grace period); a second one, at least
        SIGNAL_DEBOUNCE later (a worker gets Ctrl-C from the terminal and from its parent at once), ends the
        grace now."""
        nonlocal first_signal
        if not stop.is_set():
            first_signal = loop.time()
            stop.set()
        elif app is not None and loop.time() - first_signal >= SIGNAL_DEBOUNCE:
            app[SHUTDOWN].end_grace()

    for sig in STOP_SIGNALS:  # before anything else: a signal during start-up still stops us
        loop.add_signal_handler(sig, on_signal)
    app = build_app(config)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=runner_shutdown_timeout(config.shutdown_grace),
    )
    try:
        await runner.setup()
        if not stop.is_set():
            site = (
                # aiohttp listens again on the socket, with a backlog of 128 unless told
                web.SockSite(runner, sock, backlog=LISTEN_BACKLOG)
                if sock is not None
                else web.TCPSite(runner, config.host, config.port, backlog=LISTEN_BACKLOG)
            )
            await site.start()
            port = runner.addresses[0][1] if runner.addresses else config.port
            if show_banner:
                state = app[STATE]
                routed = {url: backend.info for url, backend in state.routed.items()}
                sys.stdout.write(banner_text(config, state.info, config.host, port, routed))
                sys.stdout.flush()
            await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal closed
SIGNAL_DEBOUNCE = 0.5  # seconds: a repeat of one Ctrl-C (terminal and parent) is not a second signal
GC_THRESHOLDS = (20_000, 50, 100)  # CPython's defaults are (700, 10, 10)


def tune_gc() -> None:
    """Make the cyclic garbage collector run rarely, for the serving process only.

    One Claude Code turn allocates thousands of objects (its 50 KB body parsed and translated), so with the
    default thresholds the collector runs several times per request and every so often walks the whole heap; at
    16 streams that showed as a p99 latency of 26-29 ms against 11-18 ms with these thresholds (bench/). Objects
    alive at start-up (modules, the app) are frozen out of collections altogether. Almost nothing the proxy
    allocates forms reference cycles, so memory stays flat (the benchmark's soak checks it)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def listen_family(host: str) -> socket.AddressFamily:
    """The address family to listen on `host` with: IPv4 when it has an IPv4 address (or is empty: all
    interfaces), else IPv6 (`socket.create_server` assumes IPv4, so `--host ::1 --workers 2` failed).
    socket.gaierror when `host` is no address and does not resolve."""
    if not host:
        return socket.AF_INET
    found = {info[0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    return socket.AF_INET if socket.AF_INET in found else socket.AF_INET6


def run(config: Config) -> int:
    """Serve in this process, or fork `config.workers` processes listening on one port with SO_REUSEPORT (the
    kernel spreads new connections evenly over their sockets), so that the proxy can use more than one core.
    Returns the exit status: 0 when every process stopped cleanly."""
    tune_gc()
    if config.workers <= 1:
        asyncio.run(serve(config))
        return 0
    family = listen_family(config.host)  # socket.gaierror (an OSError) too: the caller reports both
    with tempfile.TemporaryDirectory(prefix="ccbench-metrics-") as metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir  # each worker's /metrics sums every worker's values
        try:
            return run_workers(config, family, serve)
        finally:
            os.environ.pop(MULTIPROC_ENV, None)
