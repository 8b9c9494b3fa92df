"""The start-up text: the lines a user pastes to point Claude Code at the proxy, and what the probe found.

Pure functions of the config and the probe result, so the exact wording is testable without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from proxy.config import Config
from proxy.native import build_line
from proxy.routing import TIERS, Route, tier_route
from proxy.upstream import display_url, missing_v1_hint

# tokens: Claude Code's system prompt and tools take ~13,000 before any conversation
MIN_USEFUL_CONTEXT = 16384
OLLAMA_FIX = "start Ollama with OLLAMA_CONTEXT_LENGTH=65536 (or set num_ctx in a Modelfile)"
LMSTUDIO_FIX = "load the model with a larger context: lms load {model} --context-length 65536"
KEY_NOTE = "the proxy's key: if you gave it with --api-key, put it in CCBENCH_API_KEY first"
NO_KEY_NOTE = "any value works: this proxy checks no key (start it with --api-key to require one)"


class ProbeResult(Protocol):
    """The fields of `proxy.upstream.BackendInfo` the banner reads."""

    reachable: bool
    kind: str
    models: list[str]
    context_length: int | None
    server_context_length: int | None


def base_url(host: str, port: int) -> str:
    """What ANTHROPIC_BASE_URL should hold (wildcard binds are reached through loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def setup_lines(config: Config, host: str, port: int) -> list[str]:
    """The `export` lines for Claude Code (never the key itself: the banner may end up in a log)."""
    lines = [f"export ANTHROPIC_BASE_URL={base_url(host, port)}"]
    if config.api_key:
        lines.append(f'export ANTHROPIC_AUTH_TOKEN="$CCBENCH_API_KEY"   # {KEY_NOTE}')
    else:
        lines.append(f"export ANTHROPIC_AUTH_TOKEN=ccbench   # {NO_KEY_NOTE}")
    for alias, route in config.aliases().items():
        for tier in ("haiku", "sonnet", "opus"):
            if alias == f"claude-{tier}-local":
                lines.append(
                    f"export ANTHROPIC_DEFAULT_{tier.upper()}_MODEL={alias}   # -> {route_text(route)}"
                )
    if config.max_output_tokens:  # else Claude Code asks for 32,000 and blames that limit for a capped answer
        lines.append(
            f"export CLAUDE_CODE_MAX_OUTPUT_TOKENS={config.max_output_tokens}   # the proxy's --max-output-tokens"
        )
    lines.append("export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1   # optional: no telemetry calls")
    lines.append(f"export API_TIMEOUT_MS={int(config.read_timeout * 1000)}   # optional: allow slow prefill")
    return lines


def route_text(route: Route) -> str:
    """`small`, `small at http://127.0.0.1:8001/v1`, or `the first model of http://…` (no user:password)."""
    if route.upstream is None:
        return route.model or "the backend's first model"
    where = display_url(route.upstream)
    return f"{route.model} at {where}" if route.model else f"the first model of {where}"


def server_lines(config: Config, info: ProbeResult | None, label: str = "backend") -> list[str]:
    """What the probe of one backend (`config.upstream`) found, or why requests to it fail until it is up."""
    where = f"{display_url(config.upstream)} ({config.upstream_format} format)"
    if info is None:
        return [f"{label}: {where}: not probed (probe_backend is off)"]
    if not info.reachable:
        return [f"{label}: {where}: not reachable yet: requests will get 529 until it is"]
    models = ", ".join(info.models) if info.models else "none listed"
    context = f"{info.context_length} tokens" if info.context_length else "unknown"
    server_window = info.server_context_length
    if config.context_length:
        reported = f"; the server reports {server_window}" if server_window else ""
        context = f"{config.context_length} tokens (set with --context-length / context_length{reported})"
    lines = [f"{label}: {where}: {info.kind}", f"  models: {models}", f"  context length: {context}"]
    hint = missing_v1_hint(config) if not info.models else None
    if hint:
        lines.append(f"  no model list at {display_url(config.upstream)}/models: {hint}")
    window = config.context_length or info.context_length
    if config.context_length and server_window and config.context_length > server_window:
        lines.append(
            f"  warning: the set context length ({config.context_length:,}) is larger than the server's own "
            f"({server_window:,}): the server refuses (Ollama cuts) what does not fit its own; start it with "
            f"{config.context_length:,} or lower --context-length"
        )
    if window and window < MIN_USEFUL_CONTEXT:
        lines.append(
            f"  warning: a context of {window:,} tokens cannot take Claude Code's requests (~13,000 tokens before "
            f"any history): they will be refused as too long; {context_fix(config, info)}"
        )
    elif not window and info.kind == "ollama":
        lines.append(
            "  note: Ollama tells its context once a model is loaded (the first request loads it); its default, "
            "4,096 tokens on small GPUs, cannot take Claude Code's requests, and Ollama cuts a longer prompt "
            f"without an error: {OLLAMA_FIX}"
        )
    elif not window and info.kind == "lmstudio":
        lines.append(
            "  note: LM Studio tells its context once the model is loaded (the first request loads it, with the "
            f"context of its load settings); Claude Code needs at least {MIN_USEFUL_CONTEXT:,} tokens: "
            f"{context_fix(config, info)}"
        )
    return lines


def context_fix(config: Config, info: ProbeResult) -> str:
    """How to give this kind of server a larger window."""
    if info.kind == "ollama":
        return OLLAMA_FIX
    if info.kind == "lmstudio":
        return LMSTUDIO_FIX.format(model=config.model or next(iter(info.models), "<model>"))
    return f"start the server with at least {MIN_USEFUL_CONTEXT:,}"


def backend_lines(
    config: Config, info: ProbeResult | None, routed: Mapping[str, ProbeResult | None] | None = None
) -> list[str]:
    """What the start-up probes found (the main backend, then each backend a model route names) and where
    each model goes."""
    lines = server_lines(config, info)
    if info is not None and info.reachable:
        default = config.model or (info.models[0] if info.models else None)
        if default:
            lines.append(f"  default model: {default}")
    named: list[tuple[str, Route]] = [("default model", Route(config.model, None))] if config.model else []
    for tier in TIERS:
        if (route := tier_route(config, tier)) is not None:
            lines.append(f"  {tier}: {route_text(route)}")
            named.append((tier, route))
    for rule in config.rules:
        lines.append(f"  rule {rule.match} -> {route_text(rule.route)}")
        named.append((f"rule {rule.match}", rule.route))
    for label, route in named:
        found = info if route.upstream is None else (routed or {}).get(route.upstream)
        if route.model and (warning := unlisted_model_warning(label, route.model, found)):
            lines.append(warning)
    for url, found in (routed or {}).items():
        lines += server_lines(config.server_config(url), found, "routed backend")
    return lines


def unlisted_model_warning(label: str, model: str, info: ProbeResult | None) -> str | None:
    """A model the config names that its server does not list (a typo, or a server started with another model):
    vLLM and Ollama answer every request for it with a 404. llama-server serves its one model whatever the
    name, so it is not warned about."""
    if (
        info is None
        or not info.reachable
        or not info.models
        or model in info.models
        or info.kind == "llamacpp"
    ):
        return None
    listed = ", ".join(info.models[:5]) + (", …" if len(info.models) > 5 else "")
    return f"  warning: {label} {model} is not among the models its server lists ({listed}): requests for it will likely fail with 404"


def banner_text(
    config: Config,
    info: ProbeResult | None,
    host: str,
    port: int,
    routed: Mapping[str, ProbeResult | None] | None = None,
) -> str:
    """The whole start-up message (`routed`: the probe result of each backend a model route names)."""
    workers = f" ({config.workers} worker processes)" if config.workers > 1 else ""
    head = [f"ccbench proxy listening on {base_url(host, port)}{workers}", "", "Point Claude Code at it:"]
    body = ["  " + line for line in setup_lines(config, host, port)]
    key = ", with the key as a Bearer token" if config.api_key else ""
    metrics = f"metrics: {base_url(host, port)}/metrics (Prometheus text format{key})"
    lines = [*head, *body, "", *backend_lines(config, info, routed), build_line(), metrics]
    return "\n".join(lines) + "\n"
