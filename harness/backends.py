"""Backend presets for `ccbench run`: where each server listens by default and how to talk to it.

`format` says whether requests go through the in-process proxy ("openai": translate to Chat Completions)
or straight to the server ("anthropic": its own /v1/messages). The model name is discovered from the
server's model list (GET {base_url}/models, or {root}/v1/models for anthropic) unless --model is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp

from proxy.upstream import with_v1
from proxy.urls import http_url_problem


class BackendError(Exception):
    """A preset/URL/model problem the user must fix (usage error, exit 2)."""


@dataclass(frozen=True)
class Preset:
    name: str
    base_url: str | None  # None = must be given with --base-url
    format: str  # "openai" (through the proxy) or "anthropic" (direct)
    thinking: str  # proxy Config.thinking: how Anthropic thinking reaches the backend
    start_hint: str  # how to start the server so tool calls work (shown in errors and docs)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("reference", None, "openai", "none", "embedded; nothing to start"),
        Preset(
            "vllm",
            "http://127.0.0.1:8000/v1",
            "openai",
            "chat_template_kwargs",
            "vllm serve MODEL --enable-auto-tool-choice --tool-call-parser hermes",
        ),
        Preset(
            "llamacpp",
            "http://127.0.0.1:8080/v1",
            "openai",
            "chat_template_kwargs",
            "llama-server -m MODEL.gguf --jinja --port 8080, or ccbench backend start llamacpp",
        ),
        Preset("ollama", "http://127.0.0.1:11434/v1", "openai", "reasoning_effort", "ollama serve"),
        Preset("lmstudio", "http://127.0.0.1:1234/v1", "openai", "reasoning_effort", "lms server start"),
        Preset(
            "sglang",
            "http://127.0.0.1:30000/v1",
            "openai",
            "chat_template_kwargs",
            "python -m sglang.launch_server --model-path MODEL --tool-call-parser qwen25",
        ),
        Preset("openai", None, "openai", "reasoning_effort", "any OpenAI-compatible server; pass --base-url"),
        Preset(
            "anthropic",
            "http://127.0.0.1:8080",
            "anthropic",
            "none",
            "a server with its own /v1/messages (e.g. llama-server --jinja); pass its root URL",
        ),
    )
}


@dataclass(frozen=True)
class Target:
    """A resolved backend: preset + URL; the model is filled in after discovery."""

    preset: Preset
    base_url: str
    model: str | None = None

    @property
    def models_url(self) -> str:
        if self.preset.format == "anthropic":
            return self.base_url.rstrip("/") + "/v1/models"
        return self.base_url.rstrip("/") + "/models"


def resolve_target(preset_name: str, base_url: str | None, model: str | None) -> Target:
    """Check the preset and URL before anything starts."""
    preset = PRESETS.get(preset_name)
    if preset is None:
        raise BackendError(f"unknown backend preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    url = base_url or preset.base_url
    if preset.name == "reference":
        if base_url:
            raise BackendError("--base-url makes no sense with the reference backend (it is embedded)")
        return Target(preset, "", model)
    if not url:
        raise BackendError(f"the {preset.name} preset needs --base-url (an OpenAI base URL ending in /v1)")
    problem = http_url_problem(url, "--base-url")
    if problem:
        raise BackendError(problem)
    return Target(preset, url.rstrip("/"), model)


def _auth_headers(api_key: str | None, fmt: str) -> dict[str, str]:
    if not api_key:
        return {}
    return {"x-api-key": api_key} if fmt == "anthropic" else {"authorization": f"Bearer {api_key}"}


async def discover_model(target: Target, api_key: str | None = None, timeout: float = 5.0) -> Target:
    """Probe the backend (fail fast, naming the URL) and fill in the model when --model was not given."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(target.models_url, headers=_auth_headers(api_key, target.preset.format)) as resp,
        ):
            status, content_type, body = resp.status, resp.headers.get("content-type", ""), await resp.read()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise BackendError(
            f"backend not reachable at {target.models_url}: {exc.__class__.__name__}: {exc or 'timed out'}"
            f" (start it with: {target.preset.start_hint})"
        ) from exc
    if status in (401, 403):
        raise BackendError(
            f"backend at {target.models_url} rejected the API key (HTTP {status}); pass --api-key"
        )
    data, is_json = _json_body(body)
    if status == 200 and not is_json:  # something answers there, but not a model server's model list
        raise BackendError(not_a_model_list(target, status, content_type, body))
    if target.model:
        return target
    entries = data.get("data") if isinstance(data, dict) else None  # a server may answer any JSON at all
    listed = entries if isinstance(entries, list) else []
    models = [m["id"] for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]
    if models:
        return Target(target.preset, target.base_url, models[0])
    fixed = with_v1(target.base_url) if status == 404 and target.preset.format == "openai" else None
    if fixed:
        hint = f"; an OpenAI base URL usually ends in /v1: try --base-url {fixed}"
    elif not is_json and _media_type(content_type) not in ("", "text/plain"):  # a web page, not a 404 text
        problem = not_a_model_list(target, status, content_type, body)
        raise BackendError(f"could not discover a model: {problem} (if it is, pass --model)")
    else:
        hint = "; pass --model"
    raise BackendError(f"could not discover a model at {target.models_url} (HTTP {status}){hint}")


def _json_body(body: bytes) -> tuple[object, bool]:
    """(the parsed body, True) or (None, False) when it is not JSON."""
    try:
        return json.loads(body), True
    except ValueError:  # UnicodeDecodeError is one too
        return None, False


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def not_a_model_list(target: Target, status: int, content_type: str, body: bytes) -> str:
    """What answered instead of a model server: a web page, a file server, a UI on the wrong port."""
    start = body[:200].decode("utf-8", "replace").strip().splitlines()
    shown = f", starting {start[0][:40]!r}" if start else ", empty"
    kind = f"content-type {content_type}" if content_type else "no content-type"
    which = "OpenAI base URL (…/v1)" if target.preset.format == "openai" else "root URL"
    return (
        f"{target.models_url} answered HTTP {status} with a non-JSON body ({kind}{shown}): is "
        f"{target.base_url} the model server's {which}?"
    )


DEFAULT_CONCURRENCY = 4
MAX_RUN_CONCURRENCY = 256  # what --concurrency allows
MAX_TIMEOUT = 86400.0  # seconds: --timeout of run and live (a day; inf would overflow the event loop's timer)


async def backend_parallelism(target: Target, timeout: float = 5.0) -> int:
    """How many requests the backend serves at once: llama.cpp's `total_slots` (from /props at the server
    root), else DEFAULT_CONCURRENCY. Sending more than that only measures the backend's queue: the extra
    requests wait for a slot, and their TTFT and latency would count the wait as the model's."""
    from proxy.translate.outcome import plausible_count
    from proxy.upstream import MAX_SLOTS, server_root

    url = server_root(target.base_url) + "/props"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as resp,
        ):
            data = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return DEFAULT_CONCURRENCY
    slots = plausible_count(data.get("total_slots") if isinstance(data, dict) else None, MAX_SLOTS)
    return min(slots, MAX_RUN_CONCURRENCY) if slots else DEFAULT_CONCURRENCY
