"""Turn the measured levels into the ratios, the target check lines and the printed table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bench.fast_backend import EVENTS_PER_ANSWER
from bench.measure import LevelResult

THROUGHPUT_CONCURRENCY = 16
ERRORS_CONCURRENCY = 256
TARGET_THROUGHPUT_RATIO = 0.25
TARGET_LITELLM_RATIO = 10.0
TARGET_TTFT_DELTA_MS = 2.0
TARGET_RSS_GROWTH_PCT = 10.0


@dataclass
class Check:
    name: str
    line: str  # the printed check line
    value: float | None
    passed: bool | None  # None: not measured in this run
    runs: list[float] | None = None  # the same ratio per pair of interleaved runs, when there were several

    def to_json(self) -> dict:
        data = {"name": self.name, "line": self.line, "value": self.value, "passed": self.passed}
        if self.runs is not None:
            data["runs"] = self.runs
        return data


SCALED_TARGET = "ccbench-workers"  # the proxy started with --workers N (one process per core)
FLOOR_TARGET = "aiohttp-floor"  # bench/floor_relay.py: the proxy's HTTP stack doing none of its work
# the answer written token by token (`--paced-ms`), called directly and through a second proxy
PACED_DIRECT, PACED_TARGET = "direct-paced", "ccbench-paced"
LONG_DIRECT, LONG_TARGET = "direct-long", "ccbench-long"  # a turn late in a long session (bench/session.py)
TARGET_ORDER = [
    "direct",
    "ccbench",
    SCALED_TARGET,
    FLOOR_TARGET,
    "litellm",
    "direct-vllm",
    "ccbench-vllm",
    PACED_DIRECT,
    PACED_TARGET,
    LONG_DIRECT,
    LONG_TARGET,
]
DIRECT_FOR = {  # ratio denominators
    "ccbench": "direct",
    SCALED_TARGET: "direct",
    FLOOR_TARGET: "direct",
    "litellm": "direct",
    "ccbench-vllm": "direct-vllm",
    PACED_TARGET: PACED_DIRECT,
    LONG_TARGET: LONG_DIRECT,
}


def find(levels: list[LevelResult], target: str, concurrency: int) -> LevelResult | None:
    return next((lv for lv in levels if lv.target == target and lv.concurrency == concurrency), None)


def throughput_level(concurrencies: Iterable[int]) -> int | None:
    """Where throughput is compared: 16 streams, else the highest level below 256 (e.g. 4 with --quick)."""
    measured = sorted(set(concurrencies))
    if THROUGHPUT_CONCURRENCY in measured:
        return THROUGHPUT_CONCURRENCY
    below = [c for c in measured if c < ERRORS_CONCURRENCY]
    return below[-1] if below else None


def throughput_concurrency(levels: list[LevelResult]) -> int | None:
    return throughput_level(lv.concurrency for lv in levels if lv.target == "ccbench")


def _ratio(numerator: LevelResult | None, denominator: LevelResult | None) -> float | None:
    if numerator is None or denominator is None or not denominator.requests_per_s:
        return None
    return round(numerator.requests_per_s / denominator.requests_per_s, 3)


def _mark(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


def paired_ratios(numerator: LevelResult | None, denominator: LevelResult | None) -> list[float] | None:
    """The ratio run by run: run i of one target against run i of the other, which ran right next to it
    (`measure_all` interleaves them). On a machine whose speed drifts, their spread says how far the verdict,
    taken from each target's fastest run, can be trusted. None unless both have the same 2+ runs."""
    if numerator is None or denominator is None:
        return None
    tops, bottoms = numerator.requests_per_s_runs, denominator.requests_per_s_runs
    if len(tops) < 2 or len(tops) != len(bottoms) or not all(bottoms):
        return None
    return [round(top / bottom, 3) for top, bottom in zip(tops, bottoms, strict=True)]


def _runs_note(runs: list[float] | None) -> str:
    if runs is None:
        return ""
    met = sum(ratio >= TARGET_THROUGHPUT_RATIO for ratio in runs)
    # three places: 0.246 must not read as a 0.25 that fails
    shown = ", ".join(f"{ratio:.3f}" for ratio in runs)
    return f"; paired runs {shown}: {met} of {len(runs)} at target"


def _direct_ratio_check(levels: list[LevelResult], c: int, target: str, name: str, label: str) -> Check:
    proxy, direct = find(levels, target, c), find(levels, "direct", c)
    ratio = _ratio(proxy, direct)
    runs = paired_ratios(proxy, direct)
    passed = None if ratio is None else ratio >= TARGET_THROUGHPUT_RATIO
    shown = "n/a" if ratio is None else f"{ratio:.3f}"
    line = f"{c} concurrent: {label} = {shown} × direct (target ≥ {TARGET_THROUGHPUT_RATIO}) {_mark(passed)}"
    return Check(name, line + _runs_note(runs), ratio, passed, runs)


def throughput_checks(levels: list[LevelResult], scaled_workers: int = 0) -> list[Check]:
    """proxy/direct (one process, and with one worker process per core when measured) and ccbench/LiteLLM
    throughput at 16 concurrent streams."""
    c = throughput_concurrency(levels)
    if c is None:
        return [Check("throughput_ratio", "throughput: not measured", None, None)]
    proxy = find(levels, "ccbench", c)
    checks = [_direct_ratio_check(levels, c, "ccbench", "throughput_ratio", "proxy (one process)")]
    if find(levels, SCALED_TARGET, c) is not None:
        label = f"proxy with --workers {scaled_workers} (one process per core)"
        checks.append(_direct_ratio_check(levels, c, SCALED_TARGET, "throughput_ratio_workers", label))
    litellm = find(levels, "litellm", c)
    if litellm is not None:
        vs = _ratio(proxy, litellm)
        passed = None if vs is None else vs >= TARGET_LITELLM_RATIO
        shown = "n/a" if vs is None else f"{vs:.1f}"
        line = (
            f"{c} concurrent: proxy = {shown} × LiteLLM (target ≥ {TARGET_LITELLM_RATIO:g}) {_mark(passed)}"
        )
        checks.append(Check("litellm_ratio", line, vs, passed))
    behind_vllm = _ratio(find(levels, "ccbench-vllm", c), find(levels, "direct-vllm", c))
    if behind_vllm is not None:
        line = (
            f"{c} concurrent, with vLLM's HTTP stack (FastAPI + uvicorn) as the backend: "
            f"proxy = {behind_vllm:.2f} × direct"
        )
        checks.append(Check("vllm_stack_ratio", line, behind_vllm, None))
    return checks


def floor_check(levels: list[LevelResult]) -> list[Check]:
    """Where the proxy's cost lies: the aiohttp relay that does none of the proxy's work (bench/floor_relay.py),
    against the direct call, and the proxy's CPU per request beyond the relay's (its own work)."""
    c = throughput_concurrency(levels)
    floor = find(levels, FLOOR_TARGET, c) if c else None
    if floor is None:
        return []
    ratio = _ratio(floor, find(levels, "direct", c))
    line = f"{c} concurrent: aiohttp pass-through floor (the proxy's HTTP stack, no translation) = "
    line += "n/a" if ratio is None else f"{ratio:.2f} × direct"
    proxy = find(levels, "ccbench", c)
    if floor.server_cpu_ms_per_request and proxy is not None and proxy.server_cpu_ms_per_request:
        own = proxy.server_cpu_ms_per_request - floor.server_cpu_ms_per_request
        line += (
            f" at {floor.server_cpu_ms_per_request:.2f} ms CPU/request; the proxy's own work (parse, translate, "
            f"stream translation, log, metrics) = {own:.2f} of its {proxy.server_cpu_ms_per_request:.2f} ms"
        )
    return [Check("floor_ratio", line, ratio, None)]


def paced_check(levels: list[LevelResult], events_per_answer: int) -> list[Check]:
    """What the proxy costs when every event of the answer comes in a read of its own (a model generating in real
    time): its CPU per request and per event, against the same answer arriving in one read, and the time it adds
    to the whole stream."""
    c = throughput_concurrency(levels)
    paced = find(levels, PACED_TARGET, c) if c else None
    if paced is None or not paced.server_cpu_ms_per_request:
        return []
    cpu = paced.server_cpu_ms_per_request
    per_event_us = cpu * 1000 / events_per_answer
    line = (
        f"{c} concurrent, token by token (each of the {events_per_answer} events in a read of its own): proxy CPU "
        f"{cpu:.2f} ms/request = {per_event_us:.0f} µs per event"
    )
    batched = find(levels, "ccbench", c)
    if batched is not None and batched.server_cpu_ms_per_request:
        one_read = batched.server_cpu_ms_per_request
        per_read_us = (cpu - one_read) * 1000 / max(1, events_per_answer - 1)
        line += f" (the whole answer in one read: {one_read:.2f} ms, so each further read costs {per_read_us:.0f} µs)"
    direct = find(levels, PACED_DIRECT, c)
    if direct is not None and paced.latency_ms["p50"] is not None and direct.latency_ms["p50"] is not None:
        line += f"; end of stream p50 {paced.latency_ms['p50'] - direct.latency_ms['p50']:+.1f} ms vs direct"
    return [Check("paced_cpu_us_per_event", line, round(per_event_us, 1), None)]


def long_session_check(levels: list[LevelResult], session: str | None) -> list[Check]:
    """The ratio and CPU per request on a turn late in a long session, next to the captured turns' CPU."""
    c = throughput_concurrency(levels)
    long, direct = (find(levels, LONG_TARGET, c), find(levels, LONG_DIRECT, c)) if c else (None, None)
    if long is None or direct is None or not direct.requests_per_s:
        return []
    ratio = round(long.requests_per_s / direct.requests_per_s, 3)
    line = f"{c} concurrent, a turn late in a long session ({session or '?'}): proxy = {ratio:.3f} × direct"
    if long.server_cpu_ms_per_request:
        line += f" at {long.server_cpu_ms_per_request:.2f} ms CPU/request"
        short = find(levels, "ccbench", c)
        if short is not None and short.server_cpu_ms_per_request:
            line += f" ({short.server_cpu_ms_per_request:.2f} ms on the captured turns)"
    return [Check("long_session_ratio", line, ratio, None)]


def ttft_check(levels: list[LevelResult]) -> list[Check]:
    """TTFT p50 of the proxy minus that of the direct call, at concurrency 1."""
    proxy, direct = find(levels, "ccbench", 1), find(levels, "direct", 1)
    checks: list[Check] = []
    if proxy and direct and proxy.ttft_ms["p50"] is not None and direct.ttft_ms["p50"] is not None:
        delta = round(proxy.ttft_ms["p50"] - direct.ttft_ms["p50"], 3)
        passed = delta <= TARGET_TTFT_DELTA_MS
        line = f"c=1 TTFT: {delta:+.1f} ms vs direct (target ≤ {TARGET_TTFT_DELTA_MS:g} ms) {_mark(passed)}"
        checks.append(Check("ttft_delta_ms", line, delta, passed))
    else:
        checks.append(Check("ttft_delta_ms", "c=1 TTFT: not measured", None, None))
    litellm = find(levels, "litellm", 1)
    if litellm and direct and litellm.ttft_ms["p50"] is not None and direct.ttft_ms["p50"] is not None:
        delta = round(litellm.ttft_ms["p50"] - direct.ttft_ms["p50"], 3)
        checks.append(
            Check("litellm_ttft_delta_ms", f"c=1 TTFT (LiteLLM): {delta:+.1f} ms vs direct", delta, None)
        )
    return checks


def errors_check(levels: list[LevelResult]) -> Check:
    level = find(levels, "ccbench", ERRORS_CONCURRENCY)
    if level is None:
        return Check("errors_256", f"{ERRORS_CONCURRENCY} concurrent: not measured", None, None)
    errors = max(level.errors, level.errors_all_runs)
    runs = max(1, len(level.requests_per_s_runs))
    passed = errors == 0
    line = f"{ERRORS_CONCURRENCY} concurrent: {errors} errors in {runs * level.requests} requests (target 0) {_mark(passed)}"
    return Check("errors_256", line, float(errors), passed)


def soak_check(soak: dict | None) -> Check:
    if not soak:
        return Check("soak_rss_growth_pct", "soak: not run", None, None)
    growth = soak["rss_growth_pct"]
    passed = growth < TARGET_RSS_GROWTH_PCT and soak["level"]["errors"] == 0
    line = (
        f"soak RSS growth {growth:.1f} % over {soak['level']['requests']} requests, "
        f"{soak['level']['errors']} errors (target < {TARGET_RSS_GROWTH_PCT:g} %) {_mark(passed)}"
    )
    return Check("soak_rss_growth_pct", line, growth, passed)


def cpu_checks(levels: list[LevelResult]) -> list[Check]:
    """CPU time per request of the proxy (and LiteLLM): unlike req/s, it barely moves when other processes
    share the cores, and 1000 / it bounds the req/s one free core could serve."""
    c = throughput_concurrency(levels)
    proxy = find(levels, "ccbench", c) if c else None
    if proxy is None or not proxy.server_cpu_ms_per_request:
        return []
    cpu = proxy.server_cpu_ms_per_request
    line = f"{c} concurrent: proxy CPU {cpu:.2f} ms/request (≤ {1000 / cpu:.0f} req/s per free core)"
    if proxy.server_wait_ms_per_request is not None:
        line += f", {proxy.server_wait_ms_per_request:.2f} ms/request waiting for a core"
    litellm = find(levels, "litellm", c)
    if litellm is not None and litellm.server_cpu_ms_per_request:
        times = litellm.server_cpu_ms_per_request / cpu
        line += f"; LiteLLM {litellm.server_cpu_ms_per_request:.2f} ms/request ({times:.1f}× more)"
    return [Check("proxy_cpu_ms_per_request", line, cpu, None)]


def all_checks(
    levels: list[LevelResult],
    soak: dict | None,
    scaled_workers: int = 0,
    events_per_answer: int = EVENTS_PER_ANSWER,
    session: str | None = None,
) -> list[Check]:
    return [
        *throughput_checks(levels, scaled_workers),
        *floor_check(levels),
        *paced_check(levels, events_per_answer),
        *long_session_check(levels, session),
        *ttft_check(levels),
        errors_check(levels),
        soak_check(soak),
        *cpu_checks(levels),
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def levels_table(levels: list[LevelResult]) -> Table:
    """One row per (target, concurrency), with the proxy/direct ratio next to each proxy row."""
    table = Table(title="ccbench proxy benchmark (streaming, real Claude Code bodies)")
    for column in (
        "target",
        "conc.",
        "requests",
        "req/s",
        "× direct",
        "TTFT p50",
        "TTFT p99",
        "total p50",
        "total p99",
        "errors",
        "CPU ms/req",
        "wait ms/req",
    ):
        table.add_column(column, justify="left" if column == "target" else "right")
    for level in sorted(levels, key=lambda lv: (lv.concurrency, TARGET_ORDER.index(lv.target))):
        denominator = DIRECT_FOR.get(level.target)
        ratio = None if denominator is None else _ratio(level, find(levels, denominator, level.concurrency))
        table.add_row(
            level.target,
            str(level.concurrency),
            str(level.requests),
            f"{level.requests_per_s:.0f}",
            "" if ratio is None else f"{ratio:.3g}",
            _ms(level.ttft_ms["p50"]),
            _ms(level.ttft_ms["p99"]),
            _ms(level.latency_ms["p50"]),
            _ms(level.latency_ms["p99"]),
            str(max(level.errors, level.errors_all_runs)),
            _ms(level.server_cpu_ms_per_request),
            _ms(level.server_wait_ms_per_request),
        )
    return table


def print_report(
    console: Console, levels: list[LevelResult], soak: dict | None, checks: list[Check], notes: list[str]
) -> None:
    console.print(levels_table(levels))
    console.print(
        "best of the repeated runs per row (errors: all runs); times in ms; TTFT = first content delta; "
        "total = end of stream; "
        "CPU ms/req = CPU time of the target's server process (backend for direct) per request; "
        "wait ms/req = time that process was ready to run but had no free core (other load on the machine)",
        soft_wrap=True,
    )
    if soak:
        console.print(
            f"proxy RSS (fresh proxy, after {soak['warm_up_requests']} warm-up requests): "
            f"{soak['rss_before_kib'] / 1024:.1f} MiB before the soak, "
            f"{soak['rss_after_kib'] / 1024:.1f} MiB after, peak {soak['rss_peak_kib'] / 1024:.1f} MiB"
        )
    for note in notes:
        console.print(note, style="dim", soft_wrap=True)
    for check in checks:
        style = {True: "green", False: "red", None: "yellow"}[check.passed]
        console.print(check.line, style=style, highlight=False, soft_wrap=True)


def print_profile(console: Console, profile: dict) -> None:
    """The functions where the proxy spent its CPU samples (self time, then inclusive)."""
    if "error" in profile:
        console.print(f"profile: {profile['error']}", style="yellow", soft_wrap=True)
        return
    console.print(
        f"proxy profile: {profile['samples']} samples, raw stacks in {profile['file']}", soft_wrap=True
    )
    for kind in ("self", "inclusive"):
        rows = ", ".join(f"{entry['function']} {entry['pct']}%" for entry in profile[kind][:12])
        console.print(f"  top {kind}: {rows}", soft_wrap=True, highlight=False)
