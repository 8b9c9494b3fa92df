"""The benchmark's load generator: concurrent streaming clients, run in their own process(es).

The client lives in a separate process from the servers so that it does not share (and steal) the proxy's
event loop. Each worker opens one keep-alive connection per concurrent stream, warms every connection up,
waits for the other workers at a barrier, then sends its share of the requests and times each one:
TTFT is the arrival of the first content delta (Anthropic: the first `content_block_delta` event; OpenAI:
the first chunk whose delta has non-empty `content` or `tool_calls`), latency the end of the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench.fastloop import install_fast_loop

ANTHROPIC = "anthropic"
OPENAI = "openai"
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Target:
    """Where to send the bodies and how to read the answer."""

    name: str  # "direct", "ccbench", "litellm"
    url: str  # full endpoint URL
    kind: str  # ANTHROPIC or OPENAI
    bodies: tuple[bytes, ...]  # pre-encoded request bodies, sent round-robin
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Sample:
    ttft_ms: float | None
    latency_ms: float
    error: str | None = None


@dataclass
class WorkerResult:
    samples: list[Sample] = field(default_factory=list)
    started: float = 0.0  # time.time() when the measured phase began
    ended: float = 0.0


def _openai_line_has_content(line: bytes) -> bool:
    if not line.startswith(b"data:"):
        return False
    payload = line[5:].strip()
    if payload == b"[DONE]" or not payload:
        return False
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False


def _anthropic_line_has_content(line: bytes) -> bool:
    return line.startswith(b"event: content_block_delta") or (
        line.startswith(b"data:") and b'"type":"content_block_delta"' in line.replace(b" ", b"")
    )


def stream_problem(kind: str, body: bytes) -> str | None:
    """Why a finished stream is not a complete, successful answer (None when it is)."""
    if kind == ANTHROPIC:
        if b"event: error" in body:
            return "error event"
        if b"event: message_stop" not in body:
            return "no message_stop"
        if b"tool_use" not in body:
            return "tool call lost"
        return None
    if not body.rstrip().endswith(b"data: [DONE]"):
        return "no [DONE]"
    return None


FIRST_CONTENT: dict[str, Callable[[bytes], bool]] = {
    ANTHROPIC: _anthropic_line_has_content,
    OPENAI: _openai_line_has_content,
}


async def one_request(session: aiohttp.ClientSession, target: Target, body: bytes) -> Sample:
    """Send one streaming request and time its first content delta and its end."""
    has_content = FIRST_CONTENT[target.kind]
    started = time.perf_counter()
    ttft: float | None = None
    received = bytearray()
    scanned = 0
    try:
        async with session.post(target.url, data=body, headers=dict(target.headers)) as response:
            if response.status != 200:
                await response.read()
                return Sample(None, (time.perf_counter() - started) * 1000, f"HTTP {response.status}")
            async for data in response.content.iter_any():
                received += data
                if ttft is not None:
                    continue
                end = received.rfind(b"\n")
                if end < scanned:
                    continue
                for line in bytes(received[scanned:end]).split(b"\n"):
                    if has_content(line):
                        ttft = (time.perf_counter() - started) * 1000
                        break
                scanned = end + 1
    except (TimeoutError, aiohttp.ClientError) as exc:
        return Sample(None, (time.perf_counter() - started) * 1000, type(exc).__name__)
    latency = (time.perf_counter() - started) * 1000
    problem = stream_problem(target.kind, bytes(received))
    if problem is None and ttft is None:
        problem = "no content delta"
    return Sample(ttft, latency, problem)


async def _drive(
    session: aiohttp.ClientSession, target: Target, concurrency: int, requests: int
) -> list[Sample]:
    """`requests` requests over `concurrency` concurrent streams, each stream sending back to back."""
    counter = iter(range(requests))
    samples: list[Sample] = []

    async def stream_loop() -> None:
        for index in counter:
            samples.append(await one_request(session, target, target.bodies[index % len(target.bodies)]))

    await asyncio.gather(*(stream_loop() for _ in range(concurrency)))
    return samples


async def run_worker(
    target: Target, concurrency: int, requests: int, wait_for_start: Callable[[], object]
) -> WorkerResult:
    """Warm up one connection per stream, wait for the start signal, then measure."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await _drive(session, target, concurrency, concurrency)  # warm-up, not measured
        await asyncio.to_thread(wait_for_start)
        result = WorkerResult(started=time.time())
        result.samples = await _drive(session, target, concurrency, requests)
        result.ended = time.time()
    return result


def worker_main(target: Target, concurrency: int, requests: int, barrier: object | None) -> WorkerResult:
    """Process-pool entry point; `barrier` (a Manager Barrier) lines the workers up before measuring."""
    install_fast_loop()

    def wait_for_start() -> None:
        if barrier is not None:
            barrier.wait(timeout=REQUEST_TIMEOUT_S)  # type: ignore[attr-defined]

    return asyncio.run(run_worker(target, concurrency, requests, wait_for_start))
