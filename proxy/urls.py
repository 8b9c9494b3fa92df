"""Checks on the URLs a user gives for backends: an http(s) base URL with a host, not a pasted endpoint, and
not the proxy's own address.

Shared by the proxy's settings (`upstream`, a route's `upstream`) and the harness's `--base-url` and
`ccbench record --upstream`, so that every such mistake gets the same message with the likely fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yarl import URL

if TYPE_CHECKING:
    from proxy.config import Config


def http_url_problem(value: Any, name: str = "upstream") -> str | None:
    """What keeps `value` from being an http(s) URL with a host that aiohttp can use as a base (so no query,
    fragment or spaces), or None. `name` is the setting or option the message names."""
    if not isinstance(value, str):
        return f"{name} must be an http(s) URL, not {value!r}"
    try:
        url = URL(value)
        host = url.host  # decoded on first use: a bad IDNA name fails here
    except ValueError as exc:  # yarl: an unclosed [IPv6], a port out of range, a bad IDNA name (UnicodeError)
        return f"{name} must be an http(s) URL, not {value!r}: {exc}"
    if url.scheme not in ("http", "https"):
        return f"{name} must be an http(s) URL, not {value!r}"
    if not host:
        return f"{name} must be an http(s) URL with a host, not {value!r}"
    if not value.isprintable() or " " in value:
        return f"{name} must be an http(s) URL, not {value!r}: it holds spaces or control characters"
    if url.query_string or url.fragment:
        return f"{name} must be an http(s) URL without ?query or #fragment, not {value!r}"
    for endpoint in _ENDPOINTS:  # a pasted endpoint: requests would go to …/chat/completions/chat/completions
        base = without_path_suffix(value, endpoint)
        if base:
            return f"{name} takes the base URL, not the {endpoint} endpoint: try {base}"
    return None


def without_path_suffix(value: str, suffix: str) -> str | None:
    """`value` with `suffix` cut from the end of its path (and no user:password, for messages), or None when its
    path does not end with it: `http://u:p@h:8000/v1/chat/completions`, `/chat/completions` -> `http://h:8000/v1`."""
    url = URL(value)
    path = url.path.rstrip("/")
    if not path.endswith(suffix):
        return None
    return str(url.with_user(None).with_path(path[: -len(suffix)] or "/")).rstrip("/")


def anthropic_root(value: str) -> str | None:
    """The root an Anthropic URL ending in /v1 should have been (requests would go to /v1/v1/messages), or None."""
    return without_path_suffix(value, "/v1")


# What is left without them is the base: OpenAI bases end in /v1, Anthropic upstreams are named by their root.
_ENDPOINTS = ("/chat/completions", "/completions", "/v1/messages/count_tokens", "/v1/messages")


_LOOPBACK_V4 = ("127.0.0.1", "localhost")
_WILDCARDS = ("0.0.0.0", "::")


def upstream_is_self(config: Config, upstream: str | None = None) -> bool:
    """The upstream (or another backend URL) is this proxy's own address (e.g. `--upstream-format anthropic
    --upstream http://127.0.0.1:8082` with the default port): every request would come back in, again and again."""
    url = URL(upstream or config.upstream)
    if not config.port or url.port != config.port:
        return False
    if url.host == config.host or (url.host in _LOOPBACK_V4 and config.host in _LOOPBACK_V4):
        return True
    return config.host in _WILDCARDS and url.host in (*_LOOPBACK_V4, "::1", *_WILDCARDS)
