"""Model routing: which backend model, on which backend, a requested Claude model name goes to.

Explicit glob rules first, then a model a backend lists asked for by its own name, then the tier found in the
name (haiku / sonnet / opus), then the default model, and last the first model the backend lists. A tier or a rule may name a backend of its own (`upstream`): vLLM and
llama-server serve one model per server, so a small model for Claude Code's haiku calls next to a large one for
the main turns means two servers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.config import Config

TIERS = ("haiku", "sonnet", "opus")


@dataclass
class RouteRule:
    """`match` is a glob on the requested model name (case-insensitive); `model` is the backend model ("" = the
    first model its backend lists); `upstream` the OpenAI base URL of its own backend (None = `upstream`)."""

    match: str
    model: str
    upstream: str | None = None

    @property
    def route(self) -> Route:
        return Route(self.model or None, self.upstream)


@dataclass(frozen=True)
class Route:
    """Where one request goes. `model` None: the backend's first listed model (else the requested name as is);
    `upstream` None: the proxy's main backend."""

    model: str | None
    upstream: str | None = None


def tier_route(config: Config, tier: str) -> Route | None:
    """The route a tier was given (a model, a server of its own, or both), or None when it was given none."""
    if tier not in config.tiers and tier not in config.tier_upstreams:
        return None
    return Route(config.tiers.get(tier) or None, config.tier_upstreams.get(tier))


def resolve_route(config: Config, requested: object, listed: Mapping[str, str | None] | None = None) -> Route:
    """`listed`: the models the backends list, each with its backend's URL (None for the main one); a model
    asked for by one of those names goes to that model (ANTHROPIC_MODEL=qwen3:8b with an Ollama that serves
    several), after the rules and before the tiers and the default."""
    name = requested.strip() if isinstance(requested, str) else ""
    lowered = name.lower()
    for rule in config.rules:
        if fnmatch.fnmatchcase(lowered, rule.match.lower()):
            return rule.route
    if listed and name in listed:
        return Route(name, listed[name])
    for tier in TIERS:
        if tier in lowered and (route := tier_route(config, tier)) is not None:
            return route
    return Route(config.model or None)


def route_aliases(config: Config) -> dict[str, Route]:
    """Claude-style model ids to advertise in GET /v1/models, with the route each one takes."""
    out: dict[str, Route] = {}
    for tier in TIERS:
        if (route := tier_route(config, tier)) is not None:
            out[f"claude-{tier}-local"] = route
    for rule in config.rules:
        if not any(ch in rule.match for ch in "*?["):
            out[rule.match] = rule.route
    return out


def routed_upstreams(config: Config) -> list[str]:
    """The backends routes name besides the main one, each once, in the order they appear."""
    found = [config.tier_upstreams[t] for t in TIERS if t in config.tier_upstreams]
    found += [rule.upstream for rule in config.rules if rule.upstream]
    main = config.upstream.rstrip("/")
    return [url for url in dict.fromkeys(u.rstrip("/") for u in found) if url != main]
