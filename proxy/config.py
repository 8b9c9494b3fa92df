"""Proxy configuration: defaults < YAML file < environment (CCBENCH_*) < command-line flags.

Model routing maps what Claude Code asks for (claude-haiku-…, claude-sonnet-…, claude-opus-…, or any name
set with ANTHROPIC_MODEL) to a backend model: explicit glob rules first, then the tier found in the
name, then the default model, and last the model the backend itself reports.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from proxy.datafile import load_yaml_file

TIERS = ("haiku", "sonnet", "opus")
THINKING_STYLES = ("auto", "chat_template_kwargs", "reasoning_effort", "none")


class ConfigError(ValueError):
    """A bad configuration value or file; the CLI turns it into a usage error (exit 2)."""


@dataclass
class RouteRule:
    """`match` is a glob on the requested model name (case-insensitive); `model` is the backend model."""

    match: str
    model: str


@dataclass
class Config:
    upstream: str = "http://127.0.0.1:8000/v1"
    upstream_format: str = "openai"  # "openai" (translate) or "anthropic" (pass through)
    upstream_api_key: str | None = None  # sent to the backend as Authorization: Bearer
    model: str | None = None  # default backend model; None = the first model the backend lists
    tiers: dict[str, str] = field(default_factory=dict)  # haiku/sonnet/opus -> backend model
    rules: list[RouteRule] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8082
    api_key: str | None = None  # inbound key; None = accept any
    connect_timeout: float = 10.0
    read_timeout: float = 600.0  # longest silence allowed from the backend (prefill can be slow)
    ping_interval: float = 10.0
    max_concurrency: int = 16  # in-flight requests per backend
    max_queue: int = 256  # waiting requests beyond that; more get 529
    max_body_bytes: int = 32 * 1024 * 1024
    context_length: int | None = None  # override what the backend reports
    max_output_tokens: int | None = None  # hard cap on max_tokens sent to the backend
    thinking: str = "auto"  # how Anthropic `thinking`/effort reach the backend
    send_reasoning_back: bool = False  # history thinking -> assistant reasoning_content
    forward_headers: list[str] = field(default_factory=lambda: ["x-ccbench-turn"])
    probe_backend: bool = True  # read model list and context length at start-up
    workers: int = 1  # processes sharing the listening socket (one event loop each uses one core)
    log_level: str = "info"

    def resolve_model(self, requested: str | None, fallback: str | None = None) -> str:
        """The backend model for a requested Claude model name."""
        name = (requested or "").strip()
        lowered = name.lower()
        for rule in self.rules:
            if fnmatch.fnmatchcase(lowered, rule.match.lower()):
                return rule.model
        for tier in TIERS:
            if tier in lowered and tier in self.tiers:
                return self.tiers[tier]
        if self.model:
            return self.model
        if fallback:
            return fallback
        return name

    def aliases(self) -> dict[str, str]:
        """Claude-style model ids to advertise in GET /v1/models, with the backend model they reach."""
        out: dict[str, str] = {}
        for tier, model in self.tiers.items():
            out[f"claude-{tier}-local"] = model
        for rule in self.rules:
            if not any(ch in rule.match for ch in "*?["):
                out[rule.match] = rule.model
        return out

    def validate(self) -> None:
        if self.upstream_format not in ("openai", "anthropic"):
            raise ConfigError(
                f"upstream_format must be 'openai' or 'anthropic', not {self.upstream_format!r}"
            )
        if not self.upstream.startswith(("http://", "https://")):
            raise ConfigError(f"upstream must be an http(s) URL, not {self.upstream!r}")
        if self.thinking not in THINKING_STYLES:
            raise ConfigError(f"thinking must be one of {', '.join(THINKING_STYLES)}, not {self.thinking!r}")
        for tier in self.tiers:
            if tier not in TIERS:
                raise ConfigError(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
        for name in ("connect_timeout", "read_timeout", "ping_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be greater than 0 seconds")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        for name in ("max_concurrency", "max_queue", "max_body_bytes"):
            if getattr(self, name) < (0 if name == "max_queue" else 1):
                raise ConfigError(f"{name} must be positive")
        if not 0 <= self.port <= 65535:  # 0 = any free port (the banner shows the one bound)
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")


ENV_PREFIX = "CCBENCH_"
_SCALAR_FIELDS = {f.name: f for f in fields(Config) if f.name not in ("tiers", "rules", "forward_headers")}


def _coerce(name: str, value: Any) -> Any:
    current = getattr(Config(), name)
    if value is None:
        return None
    if isinstance(current, bool):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    try:
        if isinstance(current, int) or name in ("context_length", "max_output_tokens"):
            return int(value)
        if isinstance(current, float):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, not {value!r}") from exc
    return str(value)


def _apply_mapping(cfg: Config, data: dict[str, Any], source: str) -> None:
    for key, value in data.items():
        key = key.replace("-", "_")
        if key == "models":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: 'models' must be a mapping")
            _apply_models(cfg, value, source)
        elif key in ("tiers", "rules"):
            _apply_models(cfg, {key: value}, source)
        elif key == "forward_headers":
            cfg.forward_headers = [str(h).lower() for h in (value or [])]
        elif key in _SCALAR_FIELDS:
            setattr(cfg, key, _coerce(key, value))
        else:
            raise ConfigError(f"{source}: unknown setting {key!r}")


def _apply_models(cfg: Config, models: dict[str, Any], source: str) -> None:
    for key, value in models.items():
        if key == "default":
            cfg.model = str(value) if value else None
        elif key in TIERS:
            if value:
                cfg.tiers[key] = str(value)
        elif key == "tiers":
            for tier, model in (value or {}).items():
                _apply_models(cfg, {tier: model}, source)
        elif key == "rules":
            if not isinstance(value, list):
                raise ConfigError(f"{source}: models.rules must be a list of {{match, model}}")
            for item in value:
                if not isinstance(item, dict) or "match" not in item or "model" not in item:
                    raise ConfigError(f"{source}: each rule needs 'match' and 'model': {item!r}")
                cfg.rules.append(RouteRule(str(item["match"]), str(item["model"])))
        else:
            raise ConfigError(
                f"{source}: unknown models key {key!r} (use default, haiku, sonnet, opus, rules)"
            )


def load_config(
    path: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build a Config from a YAML file, CCBENCH_* variables and explicit overrides (None values ignored)."""
    cfg = Config()
    if path is not None:
        file = Path(path)
        data = load_yaml_file(file, "config file", ConfigError) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {file} must hold a mapping")
        _apply_mapping(cfg, data, str(file))
    env = os.environ if environ is None else environ
    env_values: dict[str, Any] = {}
    for name in _SCALAR_FIELDS:
        value = env.get(ENV_PREFIX + name.upper())
        if value not in (None, ""):
            env_values[name] = value
    for tier in TIERS:
        value = env.get(f"{ENV_PREFIX}{tier.upper()}_MODEL")
        if value:
            cfg.tiers[tier] = value
    if env.get(ENV_PREFIX + "SMALL_MODEL"):
        cfg.tiers.setdefault("haiku", env[ENV_PREFIX + "SMALL_MODEL"])
    _apply_mapping(cfg, env_values, "environment")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "small_model":
            cfg.tiers["haiku"] = value
        elif key in TIERS:
            cfg.tiers[key] = value
        else:
            _apply_mapping(cfg, {key: value}, "command line")
    cfg.upstream = cfg.upstream.rstrip("/")
    cfg.validate()
    return cfg
