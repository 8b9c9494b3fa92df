"""Run one load level in client processes and reduce the samples to the numbers the report shows."""

from __future__ import annotations

import math
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

from bench.load_client import Target, WorkerResult, worker_main
from bench.servers import cpu_delta, cpu_times, rss_kib


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None when there is nothing to measure."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


@dataclass
class LevelResult:
    target: str
    concurrency: int
    requests: int
    client_processes: int
    ok: int
    errors: int
    error_kinds: dict[str, int]
    wall_s: float
    requests_per_s: float
    ttft_ms: dict[str, float | None]
    latency_ms: dict[str, float | None]
    rss_kib: dict[str, int | None] = field(default_factory=dict)
    server_cpu_ms_per_request: float | None = None  # the target's server process (warm-up requests included)
    server_wait_ms_per_request: float | None = None  # its run-queue wait: ready to run, no free core
    requests_per_s_runs: list[float] = field(default_factory=list)  # every run of this level (best kept)
    errors_all_runs: int = 0  # errors summed over every run, not only the kept one

    def to_json(self) -> dict:
        return asdict(self)


def summarize(target: str, concurrency: int, results: list[WorkerResult]) -> LevelResult:
    """Merge the workers' samples; throughput is all requests over the span from first start to last end."""
    samples = [sample for result in results for sample in result.samples]
    good = [sample for sample in samples if sample.error is None]
    kinds: dict[str, int] = {}
    for sample in samples:
        if sample.error is not None:
            kinds[sample.error] = kinds.get(sample.error, 0) + 1
    wall = max(r.ended for r in results) - min(r.started for r in results)
    ttfts = [s.ttft_ms for s in good if s.ttft_ms is not None]
    latencies = [s.latency_ms for s in good]
    return LevelResult(
        target=target,
        concurrency=concurrency,
        requests=len(samples),
        client_processes=len(results),
        ok=len(good),
        errors=len(samples) - len(good),
        error_kinds=kinds,
        wall_s=round(wall, 3),
        requests_per_s=round(len(good) / wall, 1) if wall > 0 else 0.0,
        ttft_ms={"p50": percentile(ttfts, 50), "p99": percentile(ttfts, 99)},
        latency_ms={"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
    )


def split(total: int, parts: int) -> list[int]:
    """`total` divided into `parts` near-equal positive shares."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


class RssSampler:
    """Samples a server's RSS in a background thread while a load runs (for the soak's growth curve)."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid = pid
        self.every_s = every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            value = rss_kib(self.pid)
            if value is not None:
                self.samples.append((round(time.monotonic() - started, 2), value))
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class LoadRunner:
    """A pool of spawned client processes, reused for every level."""

    def __init__(self, client_processes: int) -> None:
        self.client_processes = client_processes
        context = multiprocessing.get_context("spawn")
        self._manager = context.Manager()
        self._pool = ProcessPoolExecutor(max_workers=client_processes, mp_context=context)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._manager.shutdown()

    def run(
        self, target: Target, concurrency: int, requests: int, server_pid: int | None = None
    ) -> LevelResult:
        """`requests` requests at `concurrency` streams, spread over the client processes; the server's RSS
        and CPU time are read before and after."""
        workers = max(1, min(self.client_processes, concurrency))
        streams = split(concurrency, workers)
        shares = split(max(requests, concurrency), workers)
        barrier = self._manager.Barrier(workers) if workers > 1 else None
        rss_before = rss_kib(server_pid) if server_pid else None
        cpu_before = cpu_times(server_pid) if server_pid else None
        futures = [
            self._pool.submit(worker_main, target, stream_count, share, barrier)
            for stream_count, share in zip(streams, shares, strict=True)
        ]
        results = [future.result() for future in futures]
        level = summarize(target.name, concurrency, results)
        if server_pid:
            level.rss_kib = {"before": rss_before, "after": rss_kib(server_pid)}
            used = cpu_delta(cpu_before or {}, cpu_times(server_pid))
            if used is not None:
                sent = level.requests + concurrency  # measured + warm-up
                level.server_cpu_ms_per_request = round(used.on_cpu_s * 1000 / sent, 3)
                if used.runqueue_wait_s is not None:
                    level.server_wait_ms_per_request = round(used.runqueue_wait_s * 1000 / sent, 3)
        return level
