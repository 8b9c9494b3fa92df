"""What the benchmark sends and to whom: the run's settings, the captured bodies, the targets, and the extra servers
behind them."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.load_client import ANTHROPIC, OPENAI, Target
from bench.report import (
    FLOOR_TARGET,
    LONG_DIRECT,
    LONG_TARGET,
    PACED_DIRECT,
    PACED_TARGET,
    SCALED_TARGET,
    throughput_level,
)
from bench.servers import (
    BenchSetupError,
    Server,
    start_ccbench_proxy,
    start_floor_relay,
    start_paced_backend,
    start_vllm_stack_backend,
)
from bench.session import grown_turns

Measured = tuple[Target, Server, int]  # a target, the server process whose CPU is measured, requests per run

DATA_FILE = Path(__file__).resolve().parent / "data" / "claude_code_requests.jsonl"
BACKEND_MODEL = "bench-model"
CLIENT_KEY = "bench-key-not-a-secret"


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures (the runner's options)."""

    levels: list[int]
    requests: int
    soak: int
    soak_concurrency: int
    litellm: bool | None  # LiteLLM's proxy: True required, None measured when installed, False off
    litellm_requests: int
    clients: int
    max_concurrency: int
    repeat: int
    launcher: list[str] | None
    profile: Path | None
    vllm_stack: bool = False
    workers: int = 1
    scale_workers: int = 0  # > 1: also measure a proxy with this many worker processes at 16 streams
    floor: bool = False  # also measure bench/floor_relay.py (aiohttp without the proxy's work) at 16 streams
    pace_ms: float = 0.0  # > 0: also measure the answer written token by token, this far apart, at 16 streams
    session_messages: int = 0  # > 0: also measure a turn this long (bench/session.py) at 16 streams

    @property
    def proxy_args(self) -> list[str]:
        return ["--workers", str(self.workers)] if self.workers > 1 else []


def load_requests(path: Path = DATA_FILE) -> list[dict]:
    """The captured Claude Code requests (streaming /v1/messages bodies with their headers)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["body"]["stream"] = True
    return rows


def anthropic_headers(row: dict, api_key: str) -> tuple[tuple[str, str], ...]:
    headers = {k: v for k, v in row["headers"].items() if k.lower() not in ("x-api-key", "authorization")}
    headers["x-api-key"] = api_key
    return tuple(headers.items())


def direct_bodies(rows: list[dict]) -> tuple[bytes, ...]:
    """The OpenAI bodies the proxy would send, translated once up front with the proxy's own translator."""
    try:
        from proxy.translate.request import BackendProfile, translate_request
    except ImportError as exc:
        raise BenchSetupError(f"proxy.translate.request is not importable: {exc}") from exc
    return tuple(
        orjson.dumps(translate_request(row["body"], BACKEND_MODEL, BackendProfile()).body) for row in rows
    )


def messages_target(name: str, url: str, rows: list[dict], api_key: str = CLIENT_KEY) -> Target:
    bodies = tuple(orjson.dumps(row["body"]) for row in rows)
    return Target(name, url, ANTHROPIC, bodies, anthropic_headers(rows[0], api_key))


def vllm_stack_targets(
    stack: contextlib.ExitStack,
    rows: list[dict],
    direct_body: tuple[bytes, ...],
    max_concurrency: int,
    proxy_args: list[str],
    launcher: list[str] | None,
    requests: int,
) -> list[Measured]:
    """The same answers from FastAPI + uvicorn (what vLLM and SGLang serve with), called directly and through
    a second proxy: what the proxy costs in front of such a server rather than a raw socket."""
    backend = start_vllm_stack_backend()
    stack.callback(backend.stop)
    proxy = start_ccbench_proxy(backend.base_url, max_concurrency, proxy_args, launcher)
    stack.callback(proxy.stop)
    direct = Target("direct-vllm", f"{backend.base_url}/v1/chat/completions", OPENAI, direct_body)
    ours = messages_target("ccbench-vllm", f"{proxy.base_url}/v1/messages?beta=true", rows)
    return [(direct, backend, requests), (ours, proxy, requests)]


def scaled_proxy_target(
    stack: contextlib.ExitStack,
    backend_url: str,
    rows: list[dict],
    workers: int,
    max_concurrency: int,
    launcher: list[str] | None,
    requests: int,
) -> Measured:
    """A second proxy started with `--workers N` (one process per core) on the same backend."""
    proxy = start_ccbench_proxy(backend_url, max_concurrency, ["--workers", str(workers)], launcher)
    stack.callback(proxy.stop)
    url = f"{proxy.base_url}/v1/messages?beta=true"
    return messages_target(SCALED_TARGET, url, rows), proxy, requests


def floor_target(stack: contextlib.ExitStack, backend_url: str, rows: list[dict], requests: int) -> Measured:
    """bench/floor_relay.py on the same backend, sent the same bodies: what aiohttp alone costs."""
    relay = start_floor_relay(backend_url)
    stack.callback(relay.stop)
    return messages_target(FLOOR_TARGET, f"{relay.base_url}/v1/messages?beta=true", rows), relay, requests


def paced_targets(
    stack: contextlib.ExitStack,
    rows: list[dict],
    direct_body: tuple[bytes, ...],
    pace_ms: float,
    max_concurrency: int,
    proxy_args: list[str],
    launcher: list[str] | None,
    requests: int,
) -> list[Measured]:
    """The same answer written token by token (each event its own write, `pace_ms` apart), called directly and
    through a second proxy: what the proxy costs per event when every event comes in a read of its own, as it does
    from a model generating in real time (the main backend's whole answer arrives in one read)."""
    backend = start_paced_backend(pace_ms)
    stack.callback(backend.stop)
    proxy = start_ccbench_proxy(backend.base_url, max_concurrency, proxy_args, launcher)
    stack.callback(proxy.stop)
    direct = Target(PACED_DIRECT, f"{backend.base_url}/v1/chat/completions", OPENAI, direct_body)
    ours = messages_target(PACED_TARGET, f"{proxy.base_url}/v1/messages?beta=true", rows)
    return [(direct, backend, requests), (ours, proxy, requests)]


def throughput_level_targets(
    stack: contextlib.ExitStack,
    settings: Settings,
    backend_url: str,
    rows: list[dict],
    direct_body: tuple[bytes, ...],
) -> list[Measured]:
    """The targets measured at the throughput level only, as the settings ask: the proxy with one worker per core,
    the aiohttp floor, and the answer token by token (directly and through a proxy of its own)."""
    if throughput_level(settings.levels) is None:
        return []
    targets: list[Measured] = []
    if settings.scale_workers > 1:
        targets.append(
            scaled_proxy_target(
                stack,
                backend_url,
                rows,
                settings.scale_workers,
                settings.max_concurrency,
                settings.launcher,
                settings.requests,
            )
        )
    if settings.floor:
        targets.append(floor_target(stack, backend_url, rows, settings.requests))
    if settings.pace_ms > 0:
        targets += paced_targets(
            stack,
            rows,
            direct_body,
            settings.pace_ms,
            settings.max_concurrency,
            settings.proxy_args,
            settings.launcher,
            settings.requests,
        )
    return targets


def long_session_rows(rows: list[dict], messages: int) -> list[dict]:
    """Three successive turns of a session grown from the longest captured turn to `messages` messages."""
    return grown_turns(max(rows, key=lambda row: len(row["body"]["messages"])), messages)


def long_session_targets(rows: list[dict], backend: Server, proxy: Server, requests: int) -> list[Measured]:
    """A turn late in a long session (`long_session_rows`), directly and through the main proxy: what the proxy's
    per-message work costs when the history is long."""
    direct = Target(LONG_DIRECT, f"{backend.base_url}/v1/chat/completions", OPENAI, direct_bodies(rows))
    ours = messages_target(LONG_TARGET, f"{proxy.base_url}/v1/messages?beta=true", rows)
    return [(direct, backend, requests), (ours, proxy, requests)]
