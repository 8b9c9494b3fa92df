"""The only place that talks HTTP to the backend: one pooled aiohttp session, limits, timeouts, error mapping.

Every failure a backend can cause leaves this module as an `AnthropicError` with the status Claude Code acts on:
unreachable -> 529 overloaded_error (Claude Code retries with backoff), silent past `read_timeout` -> 504
timeout_error, backend HTTP errors -> `backend_error_to_anthropic` (429 -> 429, 503 -> 529, context overflow ->
400 "prompt is too long"), and a 200 whose body is an error or not JSON -> the mapped error / 500 api_error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from yarl import URL

from proxy.answers import read_answer, read_error_body
from proxy.config import MAX_CONTEXT, Config
from proxy.errors import AnthropicError
from proxy.loaded_models import lmstudio_models, ollama_models
from proxy.translate.backend_errors import backend_error_to_anthropic, error_in_body
from proxy.translate.backend_stream import STREAM_CUT
from proxy.translate.chunks import parse_in_full
from proxy.translate.outcome import plausible_count

OVERLOADED_RETRY_AFTER = 2  # seconds; sent with the 529 a full queue produces
PROBE_TIMEOUT = 5.0  # seconds per start-up probe request: a probe must never delay start-up for long
CONNECTOR_SPARE = 4  # connections beyond max_concurrency for probes and /tokenize calls during full load
MAX_SLOTS = 4096  # parallel sequences a server may report


@dataclass
class BackendInfo:
    reachable: bool
    kind: str  # "llamacpp" | "vllm" | "ollama" | "lmstudio" | "openai" | "anthropic" | "unknown"
    models: list[str] = field(default_factory=list)
    context_length: int | None = None  # per request; Config.context_length wins
    slots: int | None = None  # llama.cpp total_slots (parallel sequences)
    server_context_length: int | None = None  # what the server itself reported, before --context-length
    # Ollama and LM Studio: the window each loaded model runs with (each has its own load settings)
    model_contexts: dict[str, int] = field(default_factory=dict)


def display_url(url: str) -> str:
    """The URL without user:password, safe for messages and logs."""
    return str(URL(url).with_user(None))


def with_v1(base_url: str) -> str | None:
    """The OpenAI base URL with the `/v1` nearly every server serves under, when `base_url` has none (no
    user:password, for messages); None when it has one."""
    base = base_url.rstrip("/")
    if "/v1/" in base + "/":
        return None
    return f"{display_url(base)}/v1"


def missing_v1_hint(config: Config) -> str | None:
    """For a 404 from an OpenAI-format backend whose URL lacks the `/v1` (`--upstream http://127.0.0.1:8000`
    instead of `…:8000/v1`): the likely fix, else None."""
    fixed = with_v1(config.upstream) if config.upstream_format == "openai" else None
    return f"an OpenAI base URL usually ends in /v1: try {fixed}" if fixed else None


def server_root(upstream: str) -> str:
    """The server root of an OpenAI base URL: `http://h:8000/v1` -> `http://h:8000` (llama.cpp /props lives there)."""
    base = upstream.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def malformed_response() -> AnthropicError:
    return AnthropicError(500, "api_error", "backend returned a malformed response")


def answer_object(raw: bytes) -> dict:
    """A 2xx JSON answer as its object (a lone surrogate in a model's text costs a character, not the answer);
    raises malformed_response() for anything else, and the mapped error for an error body sent with a 2xx."""
    data = parse_in_full(raw)
    if not isinstance(data, dict):
        raise malformed_response()
    if data.get("error") and not data.get("choices"):
        raise error_in_body(data)
    return data


def forwarded_headers(incoming: Mapping[str, str], config: Config) -> dict[str, str]:
    """The request headers listed in `Config.forward_headers` (e.g. x-ccbench-turn), passed on to the backend."""
    return {name: incoming[name] for name in config.forward_headers if name in incoming}


class Upstream:
    """One backend: a keep-alive connection pool, a concurrency limit with a bounded queue, mapped errors."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base_url = config.upstream.rstrip("/")
        self.root_url = server_root(self.base_url)
        self.display = display_url(self.base_url)
        self._session: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(config.max_concurrency)
        self.active = 0  # requests holding a slot
        # a request found the backend down or without the model: what the last probe found may be stale (the
        # server restarted, maybe with another model or context length); BackendState probes again
        self.needs_probe = False
        self.waiting = 0  # requests queued for a slot

    # -- session ----------------------------------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running event loop (aiohttp requires it)."""
        if self._session is None or self._session.closed:
            cfg = self.config
            connector = aiohttp.TCPConnector(
                limit=cfg.max_concurrency + CONNECTOR_SPARE,
                limit_per_host=0,
                keepalive_timeout=30,
                ttl_dns_cache=300,
            )
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=cfg.connect_timeout, sock_read=cfg.read_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                headers=self._auth_headers(),
                auto_decompress=True,
                trust_env=False,
                # No cookie jar: a proxy shared by many Claude Code users must not carry one backend
                # session's cookies into another's requests (and filtering them costs time on every request).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _auth_headers(self) -> dict[str, str]:
        key = self.config.upstream_api_key
        if not key:
            return {}
        if self.config.upstream_format == "anthropic":
            return {"x-api-key": key}
        return {"Authorization": f"Bearer {key}"}

    @property
    def has_key(self) -> bool:
        return bool(self.config.upstream_api_key)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def url(self, path: str) -> str:
        """`path` relative to Config.upstream; absolute URLs (e.g. `root_url + "/props"`) are used as they are."""
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    # -- concurrency ------------------------------------------------------------------------------------------
    @property
    def queued(self) -> bool:
        """True when a new request would have to wait for a slot."""
        return self.active >= self.config.max_concurrency

    def slot(self) -> _Slot:
        """`async with upstream.slot():` holds one of `max_concurrency` slots (see `acquire`)."""
        return _Slot(self)

    async def acquire(self) -> None:
        """Take one of `max_concurrency` slots; wait in a queue of at most `max_queue`; beyond that, 529.
        Every successful acquire needs exactly one `release`."""
        if self.queued and self.waiting >= self.config.max_queue:
            raise AnthropicError.overloaded(
                f"backend at {self.display} is at capacity ({self.config.max_concurrency} in flight, "
                f"{self.waiting} queued); retry later",
                retry_after=OVERLOADED_RETRY_AFTER,
            )
        self.waiting += 1
        try:
            await self._limit.acquire()
        finally:
            self.waiting -= 1
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        self._limit.release()

    # -- requests ---------------------------------------------------------------------------------------------
    async def open(
        self,
        method: str,
        path: str,
        *,
        json: dict | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the raw response once its headers arrived (any status); the caller releases
        it. Connection failures -> 529, no headers within read_timeout -> 504."""
        send_headers = dict(headers or {})
        if json is not None:
            data = orjson.dumps(json)
            send_headers.setdefault("Content-Type", "application/json")
        try:
            return await self.session.request(method, self.url(path), data=data, headers=send_headers)
        except Exception as exc:
            raise self.map_exception(exc) from exc

    def map_exception(self, exc: BaseException, *, after_headers: bool = False) -> BaseException:
        """A client-side failure as the AnthropicError the client should see (CancelledError passes through).
        Once the headers arrived, a dropped connection is a cut stream (api_error), not an unreachable backend."""
        if isinstance(exc, AnthropicError | asyncio.CancelledError):
            return exc
        if isinstance(exc, asyncio.TimeoutError):  # aiohttp.ServerTimeoutError is one too
            return AnthropicError(
                504,
                "timeout_error",
                f"backend at {self.display} sent nothing for {self.config.read_timeout:g} s (read_timeout)",
            )
        if isinstance(exc, aiohttp.ClientPayloadError) or (
            after_headers and isinstance(exc, aiohttp.ClientError)
        ):
            return AnthropicError(500, "api_error", STREAM_CUT)
        if isinstance(
            exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError | aiohttp.ClientOSError
        ):
            self.needs_probe = True
            return AnthropicError.overloaded(
                f"backend at {self.display} is not reachable ({type(exc).__name__})"
            )
        if isinstance(exc, aiohttp.ClientError):
            return AnthropicError(500, "api_error", f"backend request failed ({type(exc).__name__})")
        return exc

    async def read_error(self, response: aiohttp.ClientResponse) -> AnthropicError:
        """The Anthropic error for a backend error response (reads and releases it)."""
        try:
            raw = await read_error_body(response)
        except Exception as exc:  # the error body itself was cut: the status still says enough
            raw = f"backend answered HTTP {response.status} ({type(exc).__name__})".encode()
        finally:
            response.release()
        error = backend_error_to_anthropic(response.status, raw, response.headers)
        hint = missing_v1_hint(self.config) if response.status == 404 else None
        if response.status == 404:  # e.g. vLLM restarted with another model: "The model `m` does not exist."
            self.needs_probe = True
        if hint:
            error = AnthropicError(error.status, error.error_type, f"{error.message} ({hint})", error.headers)
        return error

    async def post_json(
        self, path: str, body: dict | bytes, headers: Mapping[str, str] | None = None
    ) -> dict:
        """Non-streaming JSON call (`body` as a dict, or already serialised). Returns the parsed body of a 2xx;
        raises the mapped AnthropicError otherwise."""
        if isinstance(body, bytes):
            headers = {"Content-Type": "application/json", **(headers or {})}
            response = await self.open("POST", path, data=body, headers=headers)
        else:
            response = await self.open("POST", path, json=body, headers=headers)
        if response.status >= 400:
            raise await self.read_error(response)
        try:
            raw = await read_answer(response)
        except Exception as exc:
            raise self.map_exception(exc, after_headers=True) from exc
        finally:
            response.release()
        return answer_object(raw)

    async def get_json(self, path: str, *, timeout: float = PROBE_TIMEOUT) -> Any:
        """GET for probes (/v1/models, /props…): the parsed JSON of a 2xx, or None on any failure (never raises)."""
        try:
            async with self.session.get(
                self.url(path), timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                if response.status >= 300:
                    return None
                return orjson.loads(await response.read())
        except asyncio.CancelledError:
            raise
        except Exception:
            return None

    async def probe(self) -> BackendInfo:
        """What the backend is and how much context it has; never raises (reachable=False when down)."""
        try:
            return await self._probe()
        except asyncio.CancelledError:
            raise
        except Exception:
            return BackendInfo(False, "unknown", [], self.config.context_length)

    async def _probe(self) -> BackendInfo:
        models_path = "/v1/models" if self.config.upstream_format == "anthropic" else "/models"
        models, props, ollama, lmstudio = await asyncio.gather(
            self.get_json(models_path),
            self.get_json(self.root_url + "/props"),
            self.get_json(self.root_url + "/api/version"),
            self.get_json(self.root_url + "/api/v1/models"),
        )
        info = BackendInfo(reachable=False, kind="unknown")
        if isinstance(models, dict) and isinstance(models.get("data"), list):
            entries = [m for m in models["data"] if isinstance(m, dict) and isinstance(m.get("id"), str)]
            info.reachable = True
            info.models = [m["id"] for m in entries]
            info.kind = "anthropic" if self.config.upstream_format == "anthropic" else "openai"
            chosen = next((m for m in entries if m["id"] == self.config.model), entries[0] if entries else {})
            if isinstance(chosen.get("max_model_len"), int):
                info.kind, info.context_length = "vllm", plausible_count(chosen["max_model_len"], MAX_CONTEXT)
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        if isinstance(settings, dict) and isinstance(settings.get("n_ctx"), int):
            info.reachable, info.kind = True, "llamacpp"
            info.context_length = plausible_count(settings["n_ctx"], MAX_CONTEXT)
            info.slots = plausible_count(props.get("total_slots"), MAX_SLOTS)
        elif isinstance(ollama, dict) and "version" in ollama:
            info.reachable, info.kind = True, "ollama"
            loaded = ollama_models(await self.get_json(self.root_url + "/api/ps"))
            info.context_length = loaded.context(self.config.model or next(iter(info.models), None))
            info.model_contexts = loaded.contexts
        elif info.kind == "openai" and (studio := lmstudio_models(lmstudio)) is not None:
            info.kind, info.models = "lmstudio", studio.default_first(info.models)
            info.context_length = studio.context(self.config.model or next(iter(info.models), None))
            info.model_contexts = dict(studio.contexts)
        if not info.reachable:
            # A server without /models (a team's own queue server) still counts as up if it answers HTTP at all.
            info.reachable = await self._answers_http(models_path)
        info.server_context_length = info.context_length
        if self.config.context_length:
            info.context_length = self.config.context_length
        return info

    async def _answers_http(self, path: str) -> bool:
        """True when the backend answers any HTTP status on `path` (so it is up, whatever it serves)."""
        try:
            async with self.session.get(
                self.url(path), timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
            ) as response:
                return response.status < 500
        except asyncio.CancelledError:
            raise
        except Exception:
            return False


class _Slot:
    """A plain class, not @asynccontextmanager: it is entered on every request and costs no generator."""

    __slots__ = ("upstream",)

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def __aenter__(self) -> None:
        await self.upstream.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.upstream.release()
