"""The informational routes: the model list (`/v1/models`, `/v1/models/{id}`), `/health`, `/metrics` and `/`.

They read the state the /v1/messages handlers share (proxy/handlers.py) and never call a backend except to
refresh an old probe result.
"""

from __future__ import annotations

import os

from aiohttp import web

from proxy.backend_state import BackendState
from proxy.errors import AnthropicError
from proxy.handlers import STATE, ProxyState, json_response
from proxy.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from proxy.native import build_kind
from proxy.routing import Route
from proxy.upstream import display_url

MODEL_PAGE_LIMIT = (1, 1000)  # the `limit` query parameter's range, as Anthropic's API takes it
HEALTH_MAX_AGE = 10.0  # seconds: /health probes the backend again when what it knows is older


def model_entry(model_id: str, backend_model: str, context: int | None, created_at: str) -> dict:
    return {
        "type": "model",
        "id": model_id,
        "display_name": model_id if model_id == backend_model else f"{model_id} ({backend_model})",
        "created_at": created_at,
        "max_input_tokens": context,
        "max_tokens": None,
        "description": f"served by ccbench from backend model {backend_model}",
    }


async def model_list(state: ProxyState) -> list[dict]:
    """Every backend's models plus `claude-*` aliases (Claude Code's gateway discovery keeps only ids with
    `claude`), each with the context length of the backend it reaches."""
    entries: dict[str, tuple[str, int | None]] = {}
    for backend in state.backends:
        facts = await backend.facts()
        info = backend.info
        for name in info.models if info else []:
            entries.setdefault(name, (name, facts.context_for(name)))
    aliases = state.config.aliases()
    if not aliases:
        aliases = {"claude-local": Route(state.config.model)}
    for alias, route in aliases.items():
        facts = await state.backend_for(route).facts()
        model = route.model or facts.default_model
        if model:
            entries[alias] = (model, facts.context_for(model))
    return [model_entry(mid, model, context, state.started_at) for mid, (model, context) in entries.items()]


async def handle_models(request: web.Request) -> web.StreamResponse:
    models = await model_list(request.app[STATE])
    query = request.query
    lowest, highest = MODEL_PAGE_LIMIT
    bad_limit = f"limit: must be an integer between {lowest} and {highest}"
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise AnthropicError.invalid_request(bad_limit) from None
    if not lowest <= limit <= highest:
        raise AnthropicError.invalid_request(bad_limit)
    ids = [m["id"] for m in models]
    start, end = 0, len(models)
    if query.get("after_id") in ids:
        start = ids.index(query["after_id"]) + 1
    if query.get("before_id") in ids:
        end = ids.index(query["before_id"])
        start = max(start, end - limit)
    page = models[start:end][:limit]
    return json_response(
        {
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + len(page) < end,
        }
    )


async def handle_model(request: web.Request) -> web.StreamResponse:
    wanted = request.match_info["model_id"]
    for model in await model_list(request.app[STATE]):
        if model["id"] == wanted:
            return json_response(model)
    raise AnthropicError(404, "not_found_error", f"model {wanted!r} not found")


async def _health_of(backend: BackendState) -> dict:
    # probed again when old: an outage or restart shows without a failed request
    info = await backend.backend(max_age=HEALTH_MAX_AGE)
    config = backend.config
    found: dict = {"url": display_url(config.upstream), "format": config.upstream_format}
    if info is not None:
        found.update(
            reachable=info.reachable, kind=info.kind, models=info.models, context_length=info.context_length
        )
    return found


async def handle_health(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    answer = {
        "status": "ok",
        "pid": os.getpid(),  # which worker answered (ccbench proxy --workers N)
        "translation": build_kind(),  # "compiled" (mypyc) or "pure" Python: see proxy/native.py
        "backend": await _health_of(state.main),
        "dropped_features": dict(state.dropped_features),
    }
    if state.routed:  # the backends model routes name besides `upstream`
        answer["routed_backends"] = [await _health_of(backend) for backend in state.routed.values()]
    return json_response(answer)


async def handle_metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text format (see proxy/metrics.py); behind the key when one is set, like every route that
    names models."""
    state = request.app[STATE]
    state.refresh_metrics()
    return web.Response(body=state.metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def handle_root(request: web.Request) -> web.StreamResponse:
    return json_response(
        {"status": "ok", "service": "ccbench proxy", "endpoints": ["/v1/messages", "/v1/models"]}
    )
