"""The benchmark's two extra phases on the proxy: the RSS soak and the py-spy profile."""

from __future__ import annotations

from pathlib import Path

from bench.load_client import Target
from bench.measure import LoadRunner, RssSampler
from bench.profiling import start_py_spy, stop_py_spy, summarize_collapsed
from bench.servers import Server, rss_kib


def run_soak(runner: LoadRunner, target: Target, proxy: Server, requests: int, concurrency: int) -> dict:
    """N requests through a fresh proxy while its RSS is sampled; growth = (after - before) / before.

    The proxy is new (the 256-stream level would otherwise have set a high-water mark that hides growth) and
    warmed up first with 5 % of the requests, so `before` is the steady state, not the empty start."""
    warm_up = runner.run(target, concurrency, max(concurrency, requests // 20))
    before = rss_kib(proxy.pid) or 0
    with RssSampler(proxy.pid) as sampler:
        level = runner.run(target, concurrency, requests, server_pid=proxy.pid)
    after = rss_kib(proxy.pid) or 0
    peak = max([value for _, value in sampler.samples] + [before, after])
    return {
        "level": level.to_json(),
        "warm_up_requests": warm_up.requests,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_peak_kib": peak,
        "rss_growth_pct": round((after - before) / before * 100, 2) if before else 0.0,
        "rss_samples": sampler.samples[:: max(1, len(sampler.samples) // 100)],
    }


def run_profile(runner: LoadRunner, target: Target, proxy: Server, raw_out: Path, requests: int) -> dict:
    """A c=16 load on the proxy under py-spy; the collapsed stacks go to `raw_out`, a summary to the results."""
    recorder = start_py_spy(proxy.pid, raw_out)
    if recorder is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    level = runner.run(target, 16, requests)
    diagnostics = stop_py_spy(recorder)
    if not raw_out.exists():
        return {"error": f"py-spy wrote no profile: {diagnostics.strip()[-500:]}"}
    summary = summarize_collapsed(raw_out.read_text())
    return {"file": str(raw_out), "requests_per_s_while_profiled": level.requests_per_s, **summary}
