"""The /v1/messages and count_tokens handlers, and the state every route shares (config, backends, probe results,
counters; the model list, /health and /metrics are in proxy/info_routes.py).

The /v1/messages flow: parse -> validate -> route the model -> translate -> fit max_tokens into the backend's
context -> relay the stream (or one non-streaming call) -> translate back. Errors are raised as AnthropicError
and rendered by the envelope middleware in proxy/app.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from proxy.backend_state import BackendFacts, BackendState
from proxy.config import Config
from proxy.ids import message_id
from proxy.metrics import ProxyMetrics
from proxy.passthrough import relay_passthrough
from proxy.relay import relay_stream
from proxy.requestbody import nesting_within_limits, read_json_object
from proxy.requestlog import RequestLog
from proxy.routing import Route
from proxy.shutdown import SHUTDOWN, Shutdown
from proxy.tokens import (
    CONFIRM_FRACTION,
    count_prompt_tokens,
    estimate_tokens,
    fit_max_tokens,
    fit_without_estimate,
    fitting_count,
    has_image_parts,
    max_prompt_tokens,
)
from proxy.translate.outcome import reports_usage
from proxy.translate.prefill import echoes_prefill
from proxy.translate.request import (
    TranslatedRequest,
    translate_request,
    validate_messages_request,
)
from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.serialize import serialize_body
from proxy.translate.stream import StreamTranslator
from proxy.translate.tools import compact_json, only_server_run_tools_error
from proxy.upstream import BackendInfo, Upstream, display_url, forwarded_headers

log = logging.getLogger("ccbench.proxy")

REQUEST_ID = web.RequestKey("ccbench_request_id", str)
REQUEST_LOG = web.RequestKey("ccbench_request_log", RequestLog)
MAX_DROPPED_NAMES = 64  # distinct dropped-feature names kept; Claude Code's own come to about a dozen
OTHER_FEATURE = "other"


@dataclass
class ProxyState:
    """What the request handlers share: the config, the backends (`upstream` and any a model route names) with
    their latest probe results, and the proxy-wide counters."""

    config: Config
    upstream: Upstream  # the main backend's
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    dropped_features: Counter[str] = field(default_factory=Counter)  # feature -> requests it was dropped from
    advised: set[str] = field(default_factory=set)  # operator advice already logged (see RequestLog.emit)
    metrics: ProxyMetrics = field(default_factory=ProxyMetrics)
    main: BackendState = field(init=False)
    routed: dict[str, BackendState] = field(init=False)  # upstream URL -> backend, for routes naming one
    backends: list[BackendState] = field(init=False)  # main first, then the routed ones (fixed at start)
    _listed: dict[str, str | None] = field(init=False, default_factory=dict)
    _listed_from: tuple | None = field(init=False, default=None)  # the probe results `_listed` was built from

    def __post_init__(self) -> None:
        self.main = BackendState(self.config, self.upstream)
        self.routed = {}
        for url in self.config.routed_upstreams():
            config = self.config.server_config(url)
            self.routed[url] = BackendState(config, Upstream(config))
        self.backends = [self.main, *self.routed.values()]

    @property
    def info(self) -> BackendInfo | None:
        return self.main.info

    def backend_for(self, route: Route) -> BackendState:
        return self.routed.get(route.upstream, self.main) if route.upstream else self.main

    def route(self, requested: object) -> tuple[BackendState, Route]:
        """Where a request for the model `requested` goes (see proxy/routing.py)."""
        route = self.config.route(requested, self.listed_models())
        return self.backend_for(route), route

    def listed_models(self) -> dict[str, str | None]:
        """Every model the backends list, with its backend's URL (None: main); rebuilt when a probe result
        changes (it is read on every request)."""
        infos = tuple(b.info for b in self.backends)  # held, so compared by identity (an id could be reused)
        built_from = self._listed_from
        if built_from is None or any(a is not b for a, b in zip(infos, built_from, strict=True)):
            listed: dict[str, str | None] = {}
            for url, backend in [(None, self.main), *self.routed.items()]:
                for model in backend.info.models if backend.info else []:
                    listed.setdefault(model, url)
            self._listed, self._listed_from = listed, infos
        return self._listed

    async def probe(self) -> BackendInfo:
        """Probe every backend (at start-up); the main one's result."""
        results = await asyncio.gather(*(backend.probe() for backend in self.backends))
        return results[0]

    def note_dropped(self, features: list[str]) -> None:
        """Count the features a request lost. Some names carry what the client sent (`role:…`, `tool:…`, an
        unknown block type), so past MAX_DROPPED_NAMES distinct ones (or a long one) they count as `other`: no
        client can grow /health, /metrics or memory without bound."""
        counts = self.dropped_features
        for feature in features:
            if feature not in counts and (len(counts) >= MAX_DROPPED_NAMES or len(feature) > 100):
                feature = OTHER_FEATURE
            counts[feature] += 1

    def refresh_metrics(self) -> None:
        """The gauges and dropped-feature counts as they are now (on a scrape, and a worker's timer)."""
        self.metrics.refresh(
            backends={
                display_url(b.config.upstream): (
                    b.upstream.active,
                    b.upstream.waiting,
                    b.info.reachable if b.info is not None else None,
                )
                for b in self.backends
            },
            dropped=self.dropped_features,
        )

    async def close(self) -> None:
        for backend in self.backends:
            await backend.close()


STATE = web.AppKey("ccbench_state", ProxyState)


def json_response(value: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response serialised with orjson (fast on 50 KB Claude Code bodies), or by the standard library for
    what orjson refuses: a tool input with an integer beyond 64 bits, which a model may well write."""
    return web.json_response(value, status=status, headers=headers, dumps=compact_json)


# -- routes ------------------------------------------------------------------------------------------------------
async def handle_messages(request: web.Request) -> web.StreamResponse:
    """Counted as in flight, so that a stopping proxy gives it a grace period and then a clear error."""
    shutdown = request.app[SHUTDOWN]
    with shutdown.request():
        return await _messages(request, shutdown)


async def _messages(request: web.Request, shutdown: Shutdown) -> web.StreamResponse:
    state = request.app[STATE]
    config, entry = state.config, request[REQUEST_LOG]
    raw, body = await read_json_object(request, state.config.max_body_bytes)
    entry.stream = body.get("stream") is True  # also for requests refused before they reach the backend
    if config.upstream_format == "anthropic":
        return await _passthrough(request, raw, body)
    with nesting_within_limits():
        call = await _backend_call(state, validate_messages_request(body), entry)
    # The parsed request (thousands of objects for a 50 KB Claude Code turn) is not needed while the answer
    # streams, which can take minutes: freeing it now keeps memory per open stream small and the heap warm.
    del body
    entry.stream = call.stream
    if call.stream:  # relay_stream forwards config.forward_headers itself and takes the slot
        return await relay_stream(
            request, call.upstream, call.payload, StreamTranslator(call.ctx), config, entry, {}
        )
    headers = forwarded_headers(request.headers, config)
    async with call.upstream.slot():
        completion = await shutdown.guard(call.upstream.post_json("/chat/completions", call.payload, headers))
    message = completion_to_message(completion, call.ctx)
    entry.problems.extend(call.ctx.problems)
    if reports_usage(completion.get("usage")):  # the log and metrics count what the backend counted, only
        entry.record_usage(message.get("usage") or {})
    return json_response(message)


@dataclass
class BackendCall:
    """What a /v1/messages request becomes: the OpenAI body as sent, and what translating the answer back needs."""

    payload: bytes  # the OpenAI request body, serialised
    ctx: ResponseContext
    stream: bool
    upstream: Upstream  # the backend the model route chose


async def _backend_call(state: ProxyState, body: dict, entry: RequestLog) -> BackendCall:
    """Translate, fit max_tokens into the backend's context, build the response context.

    The prompt is only estimated (and near the limit counted by the backend) when a bound from the JSON's size
    cannot rule out that the estimate matters; otherwise message_start gets a provisional count."""
    backend, route = state.route(body.get("model"))
    facts = await backend.facts()
    translated = _translate(state, facts, route, body, entry)
    openai_body, cap = translated.body, state.config.max_output_tokens
    if (
        "tools" not in openai_body
        and body.get("tools")
        and (error := only_server_run_tools_error(body["tools"]))
    ):
        raise error  # (count_tokens still counts such a request)
    context = backend.window(facts, str(openai_body.get("model") or ""))
    key = "max_completion_tokens" if "max_completion_tokens" in openai_body else "max_tokens"
    requested = openai_body.get(key)
    if not isinstance(requested, int):
        requested = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else 4096
    # max_tokens 0 (Anthropic's cache pre-warm) still costs one token here: OpenAI servers reject 0
    requested = max(requested, 1)
    # Serialised once, without max_tokens (which may still change), and completed with it below.
    serialized = serialize_body(openai_body, key, translated.tools_json)
    messages = openai_body.get("messages") or []
    parts = len(messages) + len(openai_body.get("tools") or [])
    images = has_image_parts(messages)
    fitted = fit_without_estimate(serialized.size, parts, images, requested, context, cap)
    if fitted is None:
        prompt_tokens, source = await _prompt_tokens(
            backend.upstream, facts, context, translated, serialized.message_json
        )
        max_tokens = fit_max_tokens(requested, fitting_count(prompt_tokens, source, facts.kind), context, cap)
    else:
        max_tokens, prompt_tokens = fitted
    payload = serialized.with_member(key, max_tokens)
    ctx = ResponseContext(
        requested_model=translated.requested_model,
        tool_names=translated.tool_names,
        tool_schemas=translated.tool_schemas,
        stop_sequences=translated.stop_sequences,
        message_id=message_id(),
        input_tokens=prompt_tokens,
        prefill=translated.prefill,
        prefill_echoed=echoes_prefill(facts.kind),
        lowered_max_tokens=isinstance(asked := body.get("max_tokens"), int) and max_tokens < asked,
        history_tool_ids=translated.tool_ids,
    )
    return BackendCall(payload, ctx, translated.stream, backend.upstream)


def _translate(
    state: ProxyState, facts: BackendFacts, route: Route, body: dict, entry: RequestLog
) -> TranslatedRequest:
    requested = body.get("model")
    backend_model = (
        route.model or facts.default_model or (requested.strip() if isinstance(requested, str) else "")
    )
    entry.requested_model, entry.backend_model = requested, backend_model
    translated = translate_request(body, backend_model, facts.profile)
    if translated.dropped:
        state.note_dropped(translated.dropped)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: consumed or dropped %s", entry.request_id, ", ".join(translated.dropped))
    return translated


async def _prompt_tokens(
    upstream: Upstream,
    facts: BackendFacts,
    context: int | None,
    translated: TranslatedRequest,
    message_json: list[bytes],
) -> tuple[int, str]:
    """(count, source): the fast estimate, confirmed by the backend tokenizer when it says the prompt is near
    the limit of `context`."""
    openai_body = translated.body
    estimate = estimate_tokens(openai_body, translated.tool_tokens, message_json)
    if context is None or estimate <= CONFIRM_FRACTION * max_prompt_tokens(context, 1):
        return estimate, "estimate"
    count, source = await count_prompt_tokens(upstream, openai_body, facts.kind, translated.tool_tokens)
    log.debug("prompt near the context limit: estimate %d, %s count %d", estimate, source, count)
    return count, source


async def handle_count_tokens(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw, body = await read_json_object(request, state.config.max_body_bytes)
    if state.config.upstream_format == "anthropic":
        return await _passthrough(request, raw, body)
    with nesting_within_limits():
        body = validate_messages_request(body, count_tokens=True)
        body = {**body, "max_tokens": body.get("max_tokens") or 1, "stream": False}
        backend, route = state.route(body.get("model"))
        facts = await backend.facts()
        translated = _translate(state, facts, route, body, request[REQUEST_LOG])
        count, source = await count_prompt_tokens(
            backend.upstream, translated.body, facts.kind, translated.tool_tokens
        )
    request[REQUEST_LOG].input_tokens = count
    log.debug("count_tokens: %d (%s)", count, source)
    return json_response({"input_tokens": count})


async def _passthrough(request: web.Request, raw: bytes, body: dict) -> web.StreamResponse:
    """Anthropic-format backend: the body goes through untouched except for the routed model name."""
    state, entry = request.app[STATE], request[REQUEST_LOG]
    requested = body.get("model")
    routed = state.config.resolve_model(requested) if isinstance(requested, str) else requested
    entry.requested_model, entry.backend_model, entry.stream = requested, routed, bool(body.get("stream"))
    if routed != requested:
        with nesting_within_limits():
            raw = orjson.dumps({**body, "model": routed})
    return await relay_passthrough(request, state.upstream, request.path_qs, raw, entry)
