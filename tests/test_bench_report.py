"""The benchmark's throughput verdict and its run-by-run spread (bench/report.py), on hand-made levels."""

from __future__ import annotations

from bench.measure import LevelResult
from bench.report import all_checks, floor_check, paced_check, paired_ratios, throughput_checks


def level(target: str, runs: list[float], concurrency: int = 16) -> LevelResult:
    """A measured level whose kept run is the fastest of `runs`, as `measure_all` keeps it."""
    return LevelResult(
        target=target,
        concurrency=concurrency,
        requests=2000,
        client_processes=1,
        ok=2000,
        errors=0,
        error_kinds={},
        wall_s=1.0,
        requests_per_s=max(runs),
        ttft_ms={"p50": 1.0, "p99": 2.0},
        latency_ms={"p50": 1.0, "p99": 2.0},
        requests_per_s_runs=runs,
    )


def test_the_spread_pairs_each_run_with_the_direct_run_beside_it() -> None:
    # The machine drifts: the fastest runs (used for the verdict) do not come from the same pair.
    levels = [level("direct", [4000.0, 3000.0, 2900.0]), level("ccbench", [800.0, 780.0, 900.0])]
    (check,) = throughput_checks(levels)
    assert check.value == 0.225  # 900 / 4000, best against best
    assert check.passed is False
    assert check.runs == [0.2, 0.26, 0.31]
    assert check.line.endswith(
        "= 0.225 × direct (target ≥ 0.25) FAIL; paired runs 0.200, 0.260, 0.310: 2 of 3 at target"
    )
    assert check.to_json()["runs"] == [0.2, 0.26, 0.31]


def test_no_spread_from_a_single_run_or_runs_that_do_not_pair() -> None:
    assert paired_ratios(level("ccbench", [800.0]), level("direct", [3000.0])) is None
    assert paired_ratios(level("ccbench", [800.0, 900.0]), level("direct", [3000.0])) is None
    assert paired_ratios(level("ccbench", [800.0, 900.0]), None) is None
    (check,) = throughput_checks([level("direct", [3000.0]), level("ccbench", [900.0])])
    assert check.line.endswith("PASS") and check.runs is None
    assert "runs" not in check.to_json()


def test_the_floor_line_splits_the_proxys_cpu_into_aiohttps_part_and_its_own_work() -> None:
    direct, proxy, floor = (
        level("direct", [8000.0]),
        level("ccbench", [1600.0]),
        level("aiohttp-floor", [3600.0]),
    )
    proxy.server_cpu_ms_per_request, floor.server_cpu_ms_per_request = 0.63, 0.26
    (check,) = floor_check([direct, proxy, floor])
    assert check.name == "floor_ratio" and check.value == 0.45 and check.passed is None  # informational
    assert "aiohttp pass-through floor (the proxy's HTTP stack, no translation) = 0.45 × direct" in check.line
    assert "at 0.26 ms CPU/request" in check.line and "= 0.37 of its 0.63 ms" in check.line
    assert check in all_checks([direct, proxy, floor], None)


def test_no_floor_line_without_a_floor_row_and_no_split_without_cpu_times() -> None:
    assert floor_check([level("direct", [8000.0]), level("ccbench", [1600.0])]) == []
    (check,) = floor_check(
        [level("direct", [8000.0]), level("ccbench", [1600.0]), level("aiohttp-floor", [4000.0])]
    )
    assert check.line.endswith("= 0.50 × direct")  # the CPU times were not measured: no split is invented


def test_the_token_by_token_line_gives_the_proxys_cpu_per_event_and_the_time_it_adds() -> None:
    batched, direct, paced = (
        level("ccbench", [1600.0]),
        level("direct-paced", [400.0]),
        level("ccbench-paced", [390.0]),
    )
    batched.server_cpu_ms_per_request, paced.server_cpu_ms_per_request = 0.6, 1.7
    direct.latency_ms, paced.latency_ms = {"p50": 38.8, "p99": 41.0}, {"p50": 39.9, "p99": 45.0}
    (check,) = paced_check([level("direct", [8000.0]), batched, direct, paced], 20)
    assert check.name == "paced_cpu_us_per_event" and check.value == 85.0 and check.passed is None
    assert (
        "proxy CPU 1.70 ms/request = 85 µs per event (the whole answer in one read: 0.60 ms, so each further "
        in check.line
    )
    assert "read costs 58 µs)" in check.line  # (1.70 - 0.60) ms over the 19 reads after the first
    assert check.line.endswith("; end of stream p50 +1.1 ms vs direct")
    assert check in all_checks(
        [level("direct", [8000.0]), batched, direct, paced], None, events_per_answer=20
    )


def test_no_token_by_token_line_without_its_row_or_its_cpu_time() -> None:
    assert paced_check([level("direct", [8000.0]), level("ccbench", [1600.0])], 20) == []
    assert paced_check([level("ccbench", [1600.0]), level("ccbench-paced", [390.0])], 20) == []


def test_a_ratio_just_under_the_target_is_not_shown_rounded_up_to_it() -> None:
    """0.246 printed as "0.25 … FAIL" read as a contradiction; the line shows the three places the verdict uses."""
    levels = [level("direct", [8000.0, 8000.0]), level("ccbench", [1968.0, 2000.0])]
    (check,) = throughput_checks(levels)
    assert check.passed is True and check.value == 0.25
    assert "= 0.250 × direct (target ≥ 0.25) PASS; paired runs 0.246, 0.250: 1 of 2 at target" in check.line
    (check,) = throughput_checks([level("direct", [8000.0]), level("ccbench", [1968.0])])
    assert check.passed is False and "= 0.246 × direct (target ≥ 0.25) FAIL" in check.line
