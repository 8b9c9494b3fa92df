"""Proxy configuration: defaults < YAML file < environment (CCBENCH_*) < command-line flags.

Every value is checked as it is read, whatever its source, by `setting_problem` (types, ranges, choices), so an
error names the file, the variable or the command line it came from; `Config.validate` applies the same checks
to a Config built in code.

Model routing (`models:` in the file: default, tiers, rules, each optionally on a server of its own) is read
here and applied by proxy/routing.py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from proxy.datafile import load_yaml_file
from proxy.routing import TIERS, Route, RouteRule, resolve_route, route_aliases, routed_upstreams
from proxy.urls import anthropic_root, http_url_problem, upstream_is_self

THINKING_STYLES = ("auto", "chat_template_kwargs", "reasoning_effort", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_WORKERS = 64
MAX_CONTEXT = 1 << 31  # tokens: beyond any real model; a larger context length (probed or set) is a mistake
# Whole-number settings and their ranges (None: no upper bound), whichever source sets them.
INT_RANGES: dict[str, tuple[int, int | None]] = {
    "port": (0, 65535),  # 0 = any free port (the banner shows the one bound)
    "workers": (1, MAX_WORKERS),
    "max_concurrency": (1, None),
    "max_queue": (0, None),
    "max_body_bytes": (1, None),
    "context_length": (0, MAX_CONTEXT),  # 0 (or unset) = what the backend reports
    "max_output_tokens": (1, MAX_CONTEXT),
}
SECONDS = ("connect_timeout", "read_timeout", "ping_interval", "shutdown_grace")  # finite and greater than 0
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A bad configuration value or file; the CLI turns it into a usage error (exit 2)."""


@dataclass
class Config:
    upstream: str = "http://127.0.0.1:8000/v1"
    upstream_format: str = "openai"  # "openai" (translate) or "anthropic" (pass through)
    upstream_api_key: str | None = None  # sent to the backend as Authorization: Bearer
    model: str | None = None  # default backend model; None = the first model the backend lists
    tiers: dict[str, str] = field(default_factory=dict)  # haiku/sonnet/opus -> backend model
    tier_upstreams: dict[str, str] = field(default_factory=dict)  # haiku/sonnet/opus -> a backend of its own
    servers: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # a routed server's URL -> its own settings
    rules: list[RouteRule] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8082
    api_key: str | None = None  # inbound key; None = accept any
    connect_timeout: float = 10.0
    read_timeout: float = 600.0  # longest silence allowed from the backend (prefill can be slow)
    ping_interval: float = 10.0
    shutdown_grace: float = 3.0  # on SIGINT/SIGTERM, how long requests in flight may still finish
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
        """The backend model for a requested Claude model name (see proxy/routing.py for the backend too)."""
        return resolve_route(self, requested).model or fallback or (requested or "").strip()

    def route(self, requested: object, listed: Mapping[str, str | None] | None = None) -> Route:
        return resolve_route(self, requested, listed)

    def aliases(self) -> dict[str, Route]:
        """Claude-style model ids to advertise in GET /v1/models, with the route each one takes."""
        return route_aliases(self)

    def routed_upstreams(self) -> list[str]:
        """The backends that model routes name besides `upstream`."""
        return routed_upstreams(self)

    def server_config(self, url: str) -> Config:
        """This config as the routed server at `url` uses it: its URL, its own `SERVER_SETTINGS` where the route
        gave them (else the key and limit of `upstream`, and the context length it reports), no default model."""
        own = self.servers.get(url, {})
        return replace(
            self,
            upstream=url,
            model=None,
            context_length=own.get("context_length") or None,
            upstream_api_key=own.get("upstream_api_key", self.upstream_api_key),
            max_concurrency=own.get("max_concurrency", self.max_concurrency),
        )

    def validate(self) -> None:
        """The same checks `load_config` makes on every value it reads, for a Config built in code."""
        for item in fields(self):
            problem = setting_problem(item.name, getattr(self, item.name))
            if problem:
                raise ConfigError(problem)
        self._validate_routed_upstreams()
        root = anthropic_root(self.upstream) if self.upstream_format == "anthropic" else None
        if root:
            raise ConfigError(
                "upstream with upstream_format anthropic: an Anthropic upstream is named by its root, as "
                "ANTHROPIC_BASE_URL takes it (requests go to "
                f"…/v1/messages): try {root}"
            )

    def _validate_routed_upstreams(self) -> None:
        """A route's own server: a usable URL, not this proxy, and only when the proxy translates."""
        named = [(f"models.{t}.upstream", u) for t, u in self.tier_upstreams.items()]
        named += [(f"the rule for {r.match!r}: upstream", r.upstream) for r in self.rules if r.upstream]
        for name, url in named:
            problem = http_url_problem(url, name)
            if problem:
                raise ConfigError(problem)
            if self.upstream_format == "anthropic":
                raise ConfigError(
                    f"{name}: routes to backends of their own need upstream_format openai (a pass-through "
                    "proxy has one backend)"
                )
            for key, value in self.servers.get(url, {}).items():
                problem = (
                    setting_problem(key, value) if key in SERVER_SETTINGS else f"unknown setting {key!r}"
                )
                if problem:
                    raise ConfigError(f"{name}: {problem}")
            if upstream_is_self(self, url):
                raise ConfigError(
                    f"{name} {url} is this proxy's own address: every request would come back in"
                )


def setting_problem(name: str, value: Any) -> str | None:
    """What is wrong with one (coerced) setting, or None: the one place that checks types, ranges and choices."""
    if value is None and name in _OPTIONAL:
        return None
    if name in INT_RANGES:
        low, high = INT_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number, not {value!r}"
        if high is None and value < low:
            return f"{name} must be at least {low}, not {value}"
        if high is not None and not low <= value <= high:
            return f"{name} must be between {low} and {high}, not {value}"
    elif name in SECONDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            return f"{name} must be a finite number of seconds greater than 0, not {value!r}"
    elif name == "upstream":
        return http_url_problem(value)
    elif name in _CHOICES:
        if value not in _CHOICES[name]:
            return f"{name} must be one of {', '.join(_CHOICES[name])}, not {value!r}"
    elif name in ("tiers", "tier_upstreams"):
        for tier in value:
            if tier not in TIERS:
                return f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}"
    elif name == "forward_headers":
        if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
            return f"forward_headers must be a list of header names, not {value!r}"
    elif name in _BOOLS:
        if not isinstance(value, bool):
            return f"{name} must be true or false, not {value!r}"
    elif name in _SCALAR_FIELDS and not isinstance(value, str):
        return f"{name} must be a string, not {value!r}"
    return None


ENV_PREFIX = "CCBENCH_"
_ROUTING_FIELDS = ("tiers", "tier_upstreams", "servers", "rules")
SERVER_SETTINGS = (
    "upstream_api_key",
    "context_length",
    "max_concurrency",
)  # a route may give its server these
_SCALAR_FIELDS = {f.name: f for f in fields(Config) if f.name not in (*_ROUTING_FIELDS, "forward_headers")}
_OPTIONAL = {f.name for f in fields(Config) if f.default is None}
_BOOLS = {f.name for f in fields(Config) if isinstance(f.default, bool)}
_CHOICES = {"upstream_format": ("openai", "anthropic"), "thinking": THINKING_STYLES, "log_level": LOG_LEVELS}


def _coerce(name: str, value: Any) -> Any:
    """A value from YAML, the environment (always a string) or a flag, as the setting's type; ConfigError when it
    cannot be one. Ranges are `setting_problem`'s."""
    if name not in _SCALAR_FIELDS:  # forward_headers: checked as it is
        return value
    if value is None:
        if name in _OPTIONAL:
            return None
        raise ConfigError(f"{name} must be {'true or false' if name in _BOOLS else 'a number'}, not None")
    if name in _BOOLS:
        word = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise ConfigError(f"{name} must be true or false, not {value!r}")
        return word in TRUE_WORDS
    if name in INT_RANGES or name in SECONDS:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        try:
            number = value if not isinstance(value, str) else _parse_number(value)
            if name in SECONDS:
                return float(number)
        except (ValueError, OverflowError) as exc:  # OverflowError: an int too large for a float
            raise ConfigError(f"{name} must be a number, not {value!r}") from exc
        if isinstance(number, float) and not (math.isfinite(number) and number.is_integer()):
            raise ConfigError(f"{name} must be a whole number, not {number!r}")
        return int(number)
    if name == "log_level" and isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{name} must be a string, not {value!r}")


def _parse_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)  # "1e3", "2.5", "inf", "nan": the range check decides


def _set(cfg: Config, name: str, value: Any, source: str) -> None:
    """Coerce and check one setting from `source` (a file, an environment variable, the command line)."""
    try:
        value = _coerce(name, value)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    problem = setting_problem(name, value)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    setattr(cfg, name, value)


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
            _set(cfg, key, value or [], source)
            cfg.forward_headers = [h.lower() for h in cfg.forward_headers]
        elif key in _SCALAR_FIELDS:
            _set(cfg, key, value, source)
        else:
            raise ConfigError(f"{source}: unknown setting {key!r}")


def _apply_models(cfg: Config, models: dict[str, Any], source: str) -> None:
    for key, value in models.items():
        if key == "default":
            cfg.model = str(value) if value else None
        elif key in TIERS:
            _apply_tier(cfg, key, value, source)
        elif key == "tiers":
            if not isinstance(value or {}, dict):
                raise ConfigError(f"{source}: 'tiers' must be a mapping")
            for tier, model in (value or {}).items():
                _apply_models(cfg, {tier: model}, source)
        elif key == "rules":
            if not isinstance(value, list):
                raise ConfigError(f"{source}: models.rules must be a list of {{match, model, upstream}}")
            for item in value:
                if (
                    not isinstance(item, dict)
                    or "match" not in item
                    or not (item.get("model") or item.get("upstream"))
                ):
                    raise ConfigError(
                        f"{source}: each rule needs 'match' and 'model' (or 'upstream'): {item!r}"
                    )
                name = f"the rule for {item['match']!r}"
                upstream = _route_server(cfg, {k: v for k, v in item.items() if k != "match"}, name, source)
                cfg.rules.append(RouteRule(str(item["match"]), str(item.get("model") or ""), upstream))
        else:
            raise ConfigError(
                f"{source}: unknown models key {key!r} (use default, haiku, sonnet, opus, rules)"
            )


def _apply_tier(cfg: Config, tier: str, value: Any, source: str) -> None:
    """`haiku: MODEL`, or `haiku: {model: MODEL, upstream: URL}` for a backend of its own (model optional: the
    first one that backend lists)."""
    if isinstance(value, dict):
        upstream = _route_server(cfg, value, f"models.{tier}", source)
        if value.get("model"):
            cfg.tiers[tier] = str(value["model"])
        if upstream:
            cfg.tier_upstreams[tier] = upstream
    elif value:
        cfg.tiers[tier] = str(value)


def _route_server(cfg: Config, item: dict[str, Any], name: str, source: str) -> str | None:
    """A route's mapping (`model`, `upstream` and the server's own `SERVER_SETTINGS`): its server's URL (None:
    the main one), with those settings checked and kept in `cfg.servers`; two routes to one server must agree."""
    unknown = set(item) - {"model", "upstream", *SERVER_SETTINGS}
    if unknown:
        allowed = ", ".join(("model", "upstream", *SERVER_SETTINGS))
        raise ConfigError(f"{source}: {name} takes {allowed}, not {', '.join(sorted(unknown))}")
    upstream = _route_upstream(item, name, source)
    settings: dict[str, Any] = {}
    for key in SERVER_SETTINGS:
        if item.get(key) in (None, ""):
            continue
        if upstream is None:
            raise ConfigError(
                f"{source}: {name}: {key} is for a server of its own: give the route an upstream"
            )
        try:
            settings[key] = _coerce(key, item[key])
        except ConfigError as exc:
            raise ConfigError(f"{source}: {name}: {exc}") from None
        problem = setting_problem(key, settings[key])
        if problem:
            raise ConfigError(f"{source}: {name}: {problem}")
    if upstream is not None:
        known = cfg.servers.setdefault(upstream, {})
        for key, value in settings.items():
            if known.get(key, value) != value:
                raise ConfigError(f"{source}: {name}: {key} differs from another route's to {upstream}")
            known[key] = value
    return upstream


def _route_upstream(item: dict[str, Any], name: str, source: str) -> str | None:
    value = item.get("upstream")
    if value in (None, ""):
        return None
    problem = http_url_problem(value, f"{name}: upstream")
    if problem:
        raise ConfigError(f"{source}: {problem}")
    return str(value).rstrip("/")


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
        value = env.get(f"{ENV_PREFIX}{tier.upper()}_UPSTREAM")
        if value:
            cfg.tier_upstreams[tier] = (
                _route_upstream({"upstream": value}, tier, f"{ENV_PREFIX}{tier.upper()}_UPSTREAM") or ""
            )
    if env.get(ENV_PREFIX + "SMALL_MODEL") and not env.get(ENV_PREFIX + "HAIKU_MODEL"):
        cfg.tiers["haiku"] = env[ENV_PREFIX + "SMALL_MODEL"]  # over the file's, under CCBENCH_HAIKU_MODEL
    for name, value in env_values.items():
        _set(cfg, name, value, ENV_PREFIX + name.upper())
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "small_model":
            cfg.tiers["haiku"] = value
        elif key in TIERS:
            cfg.tiers[key] = value
        elif key.endswith("_upstream") and key[: -len("_upstream")] in TIERS:
            tier = key[: -len("_upstream")]
            cfg.tier_upstreams[tier] = (
                _route_upstream({"upstream": value}, f"--{tier}-upstream", "command line") or ""
            )
        else:
            _apply_mapping(cfg, {key: value}, "command line")
    cfg.upstream = cfg.upstream.rstrip("/")
    cfg.validate()
    return cfg
