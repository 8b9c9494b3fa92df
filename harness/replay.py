"""Replay scenario turns against a backend and measure them: the engine behind `ccbench run`.

For an OpenAI-format backend the proxy runs in-process (`proxy.app.build_app` on 127.0.0.1, a free port)
and every turn goes through it, exactly as Claude Code's requests would; an `anthropic` backend is called
directly. Turns are independent requests (their history is recorded), so all of them run concurrently,
bounded by a semaphore. Timing uses `time.perf_counter` from just before the request is sent: TTFT is the
arrival of the first content_block_delta, latency the arrival of message_stop (or of the whole JSON body).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from harness.backends import DEFAULT_CONCURRENCY, BackendError, Target, backend_parallelism, discover_model
from harness.reference import REFERENCE_MODEL, TURN_HEADER, ReferenceBackend, serve_on_loopback
from harness.scenarios import Scenario, Turn
from harness.scoring import (
    NO_RESPONSE,
    prompt_tokens_of,
    scenario_entry,
    score_count_tokens_call,
    score_messages_turn,
    summarize,
)
from harness.stop_signals import unless_stopped
from harness.validation import (
    ResponseCheck,
    TimedEvent,
    check_count_tokens,
    check_json_response,
    check_stream,
)
from proxy.shutdown import runner_shutdown_timeout
from proxy.sse import SSEDecoder

# Fields of a /v1/messages body that count_tokens does not take.
NOT_FOR_COUNT_TOKENS = ("max_tokens", "stream", "metadata", "stop_sequences", "temperature", "top_p", "top_k")
ProgressHook = Callable[["Job"], None]  # called as each request finishes


@dataclass
class RunOptions:
    target: Target
    api_key: str | None = None
    concurrency: int | None = None  # None: the backend's parallel slots when it reports them, else 4
    repeats: int = 1
    timeout: float = 600.0
    # cap on max_tokens sent to the backend (OpenAI-format, via the proxy)
    max_output_tokens: int | None = None

    @property
    def in_flight(self) -> int:
        """Requests in flight at once (before the backend was asked: the default)."""
        return max(1, self.concurrency or DEFAULT_CONCURRENCY)

    def conditions(self) -> dict:
        """The settings that shape the numbers, for the results file: a gate compares like with like only when
        these match (latency under 4 requests at once is not latency under 1; a cap cuts long answers)."""
        return {
            "concurrency": self.in_flight,
            "timeout_s": self.timeout,
            "max_output_tokens": self.max_output_tokens,
        }


@dataclass
class Job:
    scenario: Scenario
    turn: Turn
    repeat: int
    stream: bool
    kind: str  # "messages" | "count_tokens"
    check: ResponseCheck | None = None
    count_value: int | None = None
    count_problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Answered with an error (or not at all), for progress counts; scoring looks deeper."""
        return self.check is None or self.check.error is not None


def turn_key(scenario_id: str, index: int) -> str:
    """The x-ccbench-turn value: which reference answer the backend should play."""
    return f"{scenario_id}#{index}"


def reference_answers(scenarios: list[Scenario]) -> dict[str, list[dict]]:
    return {turn_key(s.id, t.index): list(t.reference or []) for s in scenarios for t in s.turns or ()}


def plan_jobs(scenarios: list[Scenario], repeats: int) -> list[Job]:
    """Every call of the run, in a stable order: repeat, scenario, turn, stream mode, count_tokens last."""
    jobs = []
    for repeat in range(repeats):
        for scenario in scenarios:
            for turn in scenario.turns or ():
                jobs += [Job(scenario, turn, repeat, stream, "messages") for stream in turn.stream_modes()]
                if turn.expect.count_tokens:
                    jobs.append(Job(scenario, turn, repeat, False, "count_tokens"))
    return jobs


@contextlib.asynccontextmanager
async def in_process_proxy(target: Target, api_key: str | None, options: RunOptions) -> AsyncIterator[str]:
    """The real proxy app on 127.0.0.1:0 in front of an OpenAI-format backend; yields its root URL."""
    try:
        from proxy.app import build_app
        from proxy.config import ConfigError, load_config
    except ImportError as exc:  # a broken install, not a user error, but still no traceback
        raise BackendError(f"the ccbench proxy cannot be loaded: {exc}") from exc

    overrides = {
        "upstream": target.base_url,
        "upstream_format": "openai",
        "upstream_api_key": api_key,
        "model": target.model,
        "thinking": target.preset.thinking,
        "read_timeout": options.timeout,
        "max_concurrency": options.in_flight,
        "max_output_tokens": options.max_output_tokens,
    }
    try:
        config = load_config(overrides=overrides, environ={})  # the run's options alone decide, not CCBENCH_*
    except ConfigError as exc:
        raise BackendError(f"cannot configure the proxy: {exc}") from exc
    proxy_log = logging.getLogger("ccbench.proxy")
    level = proxy_log.level
    proxy_log.setLevel(logging.CRITICAL)  # each failure lands in the results file, not on the terminal
    try:
        # as `ccbench proxy` runs: a request whose client went away (a stopped run) is cancelled upstream too,
        # instead of holding the shutdown for as long as the backend takes
        async with serve_on_loopback(
            build_app(config),
            handler_cancellation=True,
            shutdown_timeout=runner_shutdown_timeout(config.shutdown_grace),
        ) as root:
            yield root
    finally:
        proxy_log.setLevel(level)


def _request_body(turn: Turn, model: str, stream: bool) -> dict:
    return {**turn.request, "model": model, "stream": stream}


def _no_response(exc: BaseException) -> ResponseCheck:
    message = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    return ResponseCheck(
        problems=[f"no response: {message}"], error={"type": NO_RESPONSE, "message": message}
    )


async def _read_stream(resp: aiohttp.ClientResponse, started: float) -> list[TimedEvent]:
    decoder, frames = SSEDecoder(), []
    async for chunk in resp.content.iter_any():
        now = time.perf_counter() - started
        frames += [TimedEvent(e.event, e.data, now) for e in decoder.feed(chunk)]
    now = time.perf_counter() - started
    frames += [TimedEvent(e.event, e.data, now) for e in decoder.flush()]
    return frames


async def _post(session: aiohttp.ClientSession, url: str, body: dict, headers: dict) -> tuple[Any, float]:
    """POST; -> (response, when it was sent). Retried once when a pooled keep-alive connection turns out to be
    closed by the server (llama-server closes idle ones), as the SDKs do: the request never reached it."""
    for attempt in (0, 1):
        started = time.perf_counter()
        try:
            return await session.post(url, json=body, headers=headers), started
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            if attempt:
                raise
    raise AssertionError("unreachable")


async def send_messages(session: aiohttp.ClientSession, url: str, body: dict, headers: dict) -> ResponseCheck:
    """POST /v1/messages and check the answer (stream or JSON); a dead connection is a `no_response`."""
    try:
        resp, started = await _post(session, url, body, headers)
        async with resp:
            is_sse = resp.headers.get("content-type", "").startswith("text/event-stream")
            if resp.status == 200 and is_sse:
                check = check_stream(await _read_stream(resp, started))
                if not body.get("stream"):
                    check.problems.append("a stream came back for a non-streaming request")
                return check
            raw = await resp.read()
            check = check_json_response(resp.status, raw, (time.perf_counter() - started) * 1000.0)
            if resp.status == 200 and body.get("stream"):
                check.problems.append("a JSON body came back for a streaming request")
            return check
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _no_response(exc)


async def send_count_tokens(
    session: aiohttp.ClientSession, url: str, body: dict, headers: dict, job: Job
) -> None:
    """POST /v1/messages/count_tokens with the turn's request (minus the fields it does not take)."""
    payload = {k: v for k, v in body.items() if k not in NOT_FOR_COUNT_TOKENS}
    try:
        resp, started = await _post(session, url, payload, headers)
        async with resp:
            raw, status = await resp.read(), resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        job.check = _no_response(exc)
        job.count_problems = list(job.check.problems)
        return
    latency_ms = (time.perf_counter() - started) * 1000.0
    job.count_problems = check_count_tokens(status, raw)
    if status == 200:
        job.check = ResponseCheck(problems=list(job.count_problems), latency_ms=latency_ms)
        if not job.count_problems:
            job.count_value = orjson.loads(raw)["input_tokens"]
    else:
        job.check = check_json_response(status, raw, latency_ms)


async def execute(
    jobs: list[Job],
    root: str,
    model: str,
    options: RunOptions,
    tick: ProgressHook,
    stop: asyncio.Event | None = None,
) -> None:
    """Run every job against `root` (proxy or anthropic backend) with at most `concurrency` in flight; when `stop`
    is set first, the requests in flight are cancelled and their jobs stay without a check."""
    semaphore = asyncio.Semaphore(options.in_flight)
    timeout = aiohttp.ClientTimeout(total=options.timeout)
    auth = options.api_key if options.target.preset.format == "anthropic" and options.api_key else "ccbench"
    base_headers = {"anthropic-version": "2023-06-01", "x-api-key": auth, "content-type": "application/json"}

    async def one(session: aiohttp.ClientSession, job: Job) -> None:
        headers = {**base_headers, TURN_HEADER: turn_key(job.scenario.id, job.turn.index)}
        body = _request_body(job.turn, model, job.stream)
        async with semaphore:
            try:
                if job.kind == "messages":
                    job.check = await send_messages(session, f"{root}/v1/messages?beta=true", body, headers)
                else:
                    await send_count_tokens(
                        session, f"{root}/v1/messages/count_tokens?beta=true", body, headers, job
                    )
            except Exception as exc:  # a checker bug must cost one turn (blamed on ccbench), not the run
                job.check = ResponseCheck(problems=[f"ccbench internal error: {exc!r}"])
                job.count_problems = list(job.check.problems)
        tick(job)

    connector = aiohttp.TCPConnector(limit=options.in_flight)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await unless_stopped(asyncio.gather(*(one(session, job) for job in jobs)), stop)


def score_jobs(
    scenarios: list[Scenario], jobs: list[Job], repeats: int, reference: bool = False
) -> list[dict]:
    """Scenario entries: messages turns, and count_tokens calls paired with their messages call's prompt usage.

    With the reference backend an error cannot be the backend's (it only replays recorded answers), so
    `backend_error` is reported as `proxy_protocol`: ccbench is to blame.
    """
    prompt_usage: dict[tuple[str, int, int], int | None] = {}
    for job in jobs:
        if job.kind == "messages" and job.check and job.check.message and job.check.error is None:
            key = (job.scenario.id, job.turn.index, job.repeat)
            prompt_usage.setdefault(key, prompt_tokens_of(job.check.message.get("usage")))
    turns: dict[str, list[dict]] = {s.id: [] for s in scenarios}
    calls: dict[str, list[dict]] = {s.id: [] for s in scenarios}
    for job in jobs:
        check = job.check or ResponseCheck(
            problems=["not run"], error={"type": NO_RESPONSE, "message": "not run"}
        )
        if job.kind == "messages":
            entry = score_messages_turn(job.turn, check, stream=job.stream, repeat=job.repeat)
            turns[job.scenario.id].append(entry)
        else:
            entry = score_count_tokens_call(
                job.turn,
                problems=job.count_problems,
                input_tokens=job.count_value,
                error=check.error,
                latency_ms=check.latency_ms,
                backend_prompt_tokens=prompt_usage.get((job.scenario.id, job.turn.index, job.repeat)),
                repeat=job.repeat,
            )
            calls[job.scenario.id].append(entry)
        if reference and entry["failure_class"] == "backend_error":
            entry["failure_class"] = "proxy_protocol"
    return [scenario_entry(s.id, s.suite, list(s.tags), turns[s.id], repeats, calls[s.id]) for s in scenarios]


@dataclass
class Replay:
    """What a replay gives back: the resolved target, summary and scored scenarios, and how much of it ran."""

    target: Target
    summary: dict
    scenarios: list[dict]
    planned: int  # requests
    finished: int

    @property
    def interrupted(self) -> bool:
        return self.finished < self.planned


def finished_part(
    scenarios: list[Scenario], jobs: list[Job], repeats: int
) -> tuple[list[Scenario], list[Job], int]:
    """What an interrupted replay can score honestly: (scenarios, jobs, repeats).

    Jobs run repeat after repeat, and pass^k and the per-repeat spread need every scenario in every repeat
    kept. So: the repeats that finished whole, all scenarios in them; when not even the first finished, the
    scenarios whose requests of that first repeat were all answered (a half-run scenario would pass or fail
    on whichever turns happened to finish), as a single repeat."""
    if all(job.check is not None for job in jobs):
        return scenarios, jobs, repeats
    whole = 0
    while whole < repeats and all(job.check is not None for job in jobs if job.repeat == whole):
        whole += 1
    if whole:
        return scenarios, [job for job in jobs if job.repeat < whole], whole
    first = [job for job in jobs if job.repeat == 0]
    unfinished = {job.scenario.id for job in first if job.check is None}
    kept = [scenario for scenario in scenarios if scenario.id not in unfinished]
    return kept, [job for job in first if job.scenario.id not in unfinished], 1


async def run_scenarios(
    scenarios: list[Scenario],
    options: RunOptions,
    tick: ProgressHook = lambda job: None,
    stop: asyncio.Event | None = None,
    on_start: Callable[[], object] = lambda: None,
) -> Replay:
    """Start what the target needs (reference backend, proxy), replay every job (until `stop` is set), score
    the scenarios that finished. `on_start` runs once the backend answered its probe and the first request is
    about to go: progress shown before that would claim a replay that never began."""
    target = options.target
    jobs = plan_jobs(scenarios, options.repeats)
    async with contextlib.AsyncExitStack() as stack:
        if target.preset.name == "reference":
            backend = ReferenceBackend(reference_answers(scenarios), model=target.model or REFERENCE_MODEL)
            await stack.enter_async_context(backend)
            target = Target(target.preset, backend.base_url, target.model or REFERENCE_MODEL)
        target = await discover_model(target, options.api_key, timeout=min(10.0, options.timeout))
        if options.concurrency is None:
            options.concurrency = await backend_parallelism(target, timeout=min(10.0, options.timeout))
        if target.preset.format == "anthropic":
            root = target.base_url
        else:
            root = await stack.enter_async_context(in_process_proxy(target, options.api_key, options))
        on_start()
        await execute(jobs, root, target.model or "", options, tick, stop)
    kept, kept_jobs, repeats = finished_part(scenarios, jobs, options.repeats)
    scored = score_jobs(kept, kept_jobs, repeats, reference=target.preset.name == "reference")
    finished = sum(job.check is not None for job in jobs)
    return Replay(target, summarize(scored, repeats), scored, len(jobs), finished)
