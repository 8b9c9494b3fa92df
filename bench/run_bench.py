"""Benchmark `ccbench proxy` against the direct backend call (and LiteLLM's proxy) in the same run.

    python bench/run_bench.py [--quick] [--concurrency 1,16,64,256] [--requests N] [--soak 20000]
                              [--litellm | --no-litellm] [--clients K] [--out bench/results.json] [--check]

It starts the zero-latency backend (bench/fast_backend.py) and `ccbench proxy` in front of it as
subprocesses, drives both with concurrent streaming clients in separate processes sending real Claude Code
request bodies (bench/data), prints a table plus the target check lines and writes the results as JSON.
Exit code: 0 when the run completed (1 with --check when a target was missed), 2 when it could not run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib
import datetime
import json
import os
import platform
import shlex
from dataclasses import dataclass, field

import click
import orjson
from rich.console import Console

from bench.fastloop import fast_loop_name
from bench.load_client import OPENAI, Target
from bench.measure import LevelResult, LoadRunner
from bench.phases import run_profile, run_soak
from bench.report import Check, all_checks, print_profile, print_report, throughput_level
from bench.servers import (
    BenchSetupError,
    Server,
    rss_kib,
    start_ccbench_proxy,
    start_fast_backend,
    start_litellm,
)
from bench.session import describe
from bench.targets import (
    Settings,
    direct_bodies,
    load_requests,
    long_session_rows,
    long_session_targets,
    messages_target,
    throughput_level_targets,
    vllm_stack_targets,
)
from proxy.native import build_kind

BACKEND_STREAM = "20 SSE events per answer: role, 8 text fragments, tool call head + 7 argument fragments, finish, usage, [DONE]"


def parse_levels(text: str) -> list[int]:
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from exc
    if not levels or levels[0] < 1:
        raise click.BadParameter("concurrency levels must be positive integers")
    return levels


def measure_all(
    runner: LoadRunner,
    targets: list[tuple[Target, Server, int]],
    levels: list[int],
    repeat: int,
    console: Console,
    only_at: dict[str, int] | None = None,
) -> list[LevelResult]:
    """Every target at every level (or only at the level `only_at` names for it), `repeat` times interleaved
    (direct, proxy, direct, proxy, ...), keeping each target's fastest run: on a shared machine other load only
    ever slows a run down, so the best of K is the least disturbed estimate. Every run's req/s is kept in
    `requests_per_s_runs`."""
    results: list[LevelResult] = []
    only_at = only_at or {}
    for concurrency in levels:
        runs: dict[str, list[LevelResult]] = {}
        for attempt in range(repeat):
            for target, server, requests in targets:
                if only_at.get(target.name, concurrency) != concurrency:
                    continue
                label = f"  {target.name:8} c={concurrency:<4} {requests} requests"
                console.print(
                    label + (f" (run {attempt + 1}/{repeat})" if repeat > 1 else "") + " …", highlight=False
                )
                runs.setdefault(target.name, []).append(runner.run(target, concurrency, requests, server.pid))
        for attempts in runs.values():
            best = max(attempts, key=lambda level: level.requests_per_s)
            best.requests_per_s_runs = [level.requests_per_s for level in attempts]
            best.errors_all_runs = sum(level.errors for level in attempts)
            results.append(best)
    return results


def environment(client_processes: int) -> dict:
    return {
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "client_processes": client_processes,
        "client_loop": fast_loop_name(),
        "proxy_translation": build_kind(),  # of this checkout: "compiled" (mypyc) or "pure" (proxy/native.py)
    }


@dataclass
class Outcome:
    rows: list[dict]
    levels: list[LevelResult] = field(default_factory=list)
    soak: dict | None = None
    profile: dict | None = None
    notes: list[str] = field(default_factory=list)
    proxy_rss_kib_at_start: int | None = None
    session: str | None = None  # the long-session turn measured, described (bench/session.py)

    def to_json(self, settings: Settings, checks: list[Check]) -> dict:
        return {
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "environment": {
                **environment(settings.clients),
                "proxy_workers": settings.workers,
                "scaled_proxy_workers": settings.scale_workers if settings.scale_workers > 1 else None,
                "paced_ms": settings.pace_ms or None,
                "long_session": self.session,
            },
            "bodies": [
                f"{row['scenario']}-{row['seq']} ({len(orjson.dumps(row['body']))} bytes)"
                for row in self.rows
            ],
            "backend_stream": BACKEND_STREAM,
            "proxy_rss_kib_at_start": self.proxy_rss_kib_at_start,
            "levels": [level.to_json() for level in self.levels],
            "soak": self.soak,
            "profile": self.profile,
            "checks": [c.to_json() for c in checks],
            "notes": self.notes,
        }


def execute(settings: Settings, console: Console) -> Outcome:
    """Start the servers, measure every target at every level, soak and profile; always stop the servers."""
    outcome = Outcome(rows=load_requests())
    direct_body = direct_bodies(outcome.rows)
    with contextlib.ExitStack() as stack:
        backend = start_fast_backend()
        stack.callback(backend.stop)
        proxy = start_ccbench_proxy(
            backend.base_url, settings.max_concurrency, settings.proxy_args, settings.launcher
        )
        stack.callback(proxy.stop)
        outcome.proxy_rss_kib_at_start = rss_kib(proxy.pid)
        direct = Target("direct", f"{backend.base_url}/v1/chat/completions", OPENAI, direct_body)
        ours = messages_target("ccbench", f"{proxy.base_url}/v1/messages?beta=true", outcome.rows)
        targets = [(direct, backend, settings.requests), (ours, proxy, settings.requests)]
        if settings.litellm is not False:
            models = sorted({row["body"]["model"] for row in outcome.rows})
            try:
                lite, lite_key = start_litellm(backend.base_url, models)
                stack.callback(lite.stop)
                lite_target = messages_target(
                    "litellm", f"{lite.base_url}/v1/messages", outcome.rows, lite_key
                )
                targets.append((lite_target, lite, settings.litellm_requests))
            except BenchSetupError as exc:
                if settings.litellm:  # asked for by name: a run without it is not the run that was asked for
                    raise BenchSetupError(f"--litellm: {exc}") from None
                outcome.notes.append(f"LiteLLM skipped: {exc}")
        if settings.vllm_stack:
            try:
                targets += vllm_stack_targets(
                    stack,
                    outcome.rows,
                    direct_body,
                    settings.max_concurrency,
                    settings.proxy_args,
                    settings.launcher,
                    settings.requests,
                )
            except BenchSetupError as exc:
                outcome.notes.append(f"vLLM-stack backend skipped: {exc}")
        extra = throughput_level_targets(stack, settings, backend.base_url, outcome.rows, direct_body)
        if settings.session_messages and throughput_level(settings.levels) is not None:
            session_rows = long_session_rows(outcome.rows, settings.session_messages)
            outcome.session = describe(session_rows)
            extra += long_session_targets(session_rows, backend, proxy, settings.requests)
        targets += extra
        level = throughput_level(settings.levels)
        only_at = {target.name: level for target, _, _ in extra if level is not None}
        runner = LoadRunner(settings.clients)
        stack.callback(runner.close)
        console.print(
            f"backend {backend.base_url}  proxy {proxy.base_url} (pid {proxy.pid})", highlight=False
        )
        outcome.levels = measure_all(runner, targets, settings.levels, settings.repeat, console, only_at)
        if settings.soak:
            console.print(
                f"  soak     c={settings.soak_concurrency:<4} {settings.soak} requests on a fresh proxy …"
            )
            proxy.stop()
            proxy = start_ccbench_proxy(
                backend.base_url, settings.max_concurrency, settings.proxy_args, settings.launcher
            )
            stack.callback(proxy.stop)
            ours = messages_target("ccbench", f"{proxy.base_url}/v1/messages?beta=true", outcome.rows)
            outcome.soak = run_soak(runner, ours, proxy, settings.soak, settings.soak_concurrency)
        if settings.profile is not None:
            console.print(f"  profile  c=16   {settings.requests} requests under py-spy …", highlight=False)
            outcome.profile = run_profile(runner, ours, proxy, settings.profile, settings.requests)
    return outcome


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--quick", is_flag=True, help="A handful of requests at concurrency 1 and 4, no soak, no LiteLLM."
)
@click.option(
    "--concurrency", "concurrency_text", default=None, help="Comma-separated levels [default: 1,16,64,256]."
)
@click.option(
    "--requests",
    "requests",
    type=click.IntRange(1),
    default=None,
    help="Requests per level and target [default: 2000].",
)
@click.option(
    "--soak",
    type=click.IntRange(0),
    default=None,
    help="Soak requests through the proxy (0 = none) [default: 20000].",
)
@click.option(
    "--soak-concurrency",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Streams during the soak.",
)
@click.option(
    "--litellm/--no-litellm",
    default=None,
    help="Measure LiteLLM's proxy side by side [default: when it is installed (the `bench` extra, "
    "$CCBENCH_LITELLM or PATH), except with --quick]. --litellm without it installed is an error.",
)
@click.option(
    "--litellm-requests",
    type=click.IntRange(1),
    default=300,
    show_default=True,
    help="Requests per level for LiteLLM.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=None,
    help="Runs per level and target; the fastest is kept [default: 3, 1 with --quick].",
)
@click.option("--clients", type=click.IntRange(1), default=1, show_default=True, help="Client processes.")
@click.option(
    "--max-concurrency",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="Passed to ccbench proxy.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench/results.json"),
    show_default=True,
)
@click.option(
    "--proxy-command",
    default=None,
    help="Command that replaces `ccbench` to start the proxy (shell words), e.g. to A/B a patched proxy.",
)
@click.option(
    "--vllm-stack",
    is_flag=True,
    help="Also measure against FastAPI + uvicorn (vLLM's HTTP stack), directly and through a second proxy.",
)
@click.option(
    "--workers", type=click.IntRange(1), default=1, show_default=True, help="Passed to ccbench proxy."
)
@click.option(
    "--scale-workers",
    type=click.IntRange(0),
    default=None,
    help="Also measure a proxy started with --workers N at 16 streams, as a row of its own "
    "[default: the number of cores when more than one; 0 = off; off with --quick].",
)
@click.option(
    "--floor/--no-floor",
    default=None,
    help="Also measure bench/floor_relay.py, the proxy's HTTP stack (aiohttp server and client) doing none "
    "of its work, at 16 streams: the part of the proxy's cost that is aiohttp's [default: on, off with --quick].",
)
@click.option(
    "--paced-ms",
    "pace_ms",
    type=click.FloatRange(0),
    default=None,
    help="Also measure the answer written token by token, each event this many ms after the last, directly and "
    "through a second proxy at 16 streams: the proxy's cost per event when each comes in a read of its own "
    "[default: 2; 0 = off; off with --quick].",
)
@click.option(
    "--session-messages",
    type=click.IntRange(0),
    default=None,
    help="Also measure a turn late in a long session (a captured turn grown with Read calls and results to this "
    "many messages), directly and through the proxy at 16 streams [default: 300; 0 = off; off with --quick].",
)
@click.option("--check", is_flag=True, help="Exit 1 when a measured target is missed.")
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also profile the proxy with py-spy during a c=16 run; collapsed stacks go to this file.",
)
def main(
    quick: bool,
    concurrency_text: str | None,
    requests: int | None,
    soak: int | None,
    soak_concurrency: int,
    litellm: bool | None,
    litellm_requests: int,
    repeat: int | None,
    clients: int,
    max_concurrency: int,
    out: Path,
    proxy_command: str | None,
    vllm_stack: bool,
    workers: int,
    scale_workers: int | None,
    floor: bool | None,
    pace_ms: float | None,
    session_messages: int | None,
    check: bool,
    profile: Path | None,
) -> None:
    """Benchmark ccbench proxy against the direct backend call (and LiteLLM) with real Claude Code bodies."""
    requests = requests or (20 if quick else 2000)
    settings = Settings(
        levels=parse_levels(concurrency_text or ("1,4" if quick else "1,16,64,256")),
        requests=requests,
        soak=(0 if quick else 20000) if soak is None else soak,
        soak_concurrency=soak_concurrency,
        litellm=False if litellm is None and quick else litellm,
        litellm_requests=min(litellm_requests, requests),
        clients=clients,
        max_concurrency=max_concurrency,
        repeat=repeat or (1 if quick else 3),
        launcher=shlex.split(proxy_command) if proxy_command else None,
        profile=profile,
        vllm_stack=vllm_stack,
        workers=workers,
        scale_workers=(0 if quick else (os.cpu_count() or 1)) if scale_workers is None else scale_workers,
        floor=not quick if floor is None else floor,
        pace_ms=(0.0 if quick else 2.0) if pace_ms is None else pace_ms,
        session_messages=(0 if quick else 300) if session_messages is None else session_messages,
    )
    console = Console(markup=False)  # what it prints quotes server logs and paths: text, never markup
    if not console.is_terminal:
        console.width = 160  # a log or a pipe: keep the table's columns readable
    try:
        outcome = execute(settings, console)
    except BenchSetupError as exc:
        console.print(f"benchmark could not run: {exc}", style="red", highlight=False)
        sys.exit(2)
    checks = all_checks(outcome.levels, outcome.soak, settings.scale_workers, session=outcome.session)
    print_report(console, outcome.levels, outcome.soak, checks, outcome.notes)
    if outcome.profile:
        print_profile(console, outcome.profile)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(outcome.to_json(settings, checks), indent=2) + "\n")
    except OSError as exc:
        console.print(f"cannot write {out}: {exc}", style="red", highlight=False)
        sys.exit(2)
    console.print(f"results written to {out}", highlight=False)
    if check and any(c.passed is False for c in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
