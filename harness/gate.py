"""`ccbench gate` decisions: does a candidate's results file hold against a baseline? Pure functions.

Each threshold becomes one `Check`, each scenario one `ScenarioCheck`. A check that breaches its threshold
is re-examined against the repeat-to-repeat spread (harness.stats) when both files carry
`summary.per_repeat`: inside the noise band the verdict is "noise" and the gate does not fail.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness.report_data import ResultsError, RunView, ScenarioView
from harness.report_labels import format_value, scenario_ids
from harness.run_conditions import condition_notes, interruption
from harness.stats import NoiseBand, noise_band
from proxy.datafile import load_yaml_file

EPSILON = 1e-9  # float tolerance so 0.85 - 0.80 is not "more than 0.05"


class GateConfigError(Exception):
    """A gate.yaml that cannot be read or holds an unknown key or a bad value (usage error: exit 2)."""


@dataclass(frozen=True)
class GateThresholds:
    """The gate's thresholds; the defaults are the documented ones."""

    min_schema_validity: float = 1.0  # candidate schema validity must be at least this
    max_tool_drop: float = 0.05  # tool-call success may drop at most this many points (fraction)
    max_spurious_growth: float = 0.05  # spurious tool calls on text turns may grow at most this (fraction)
    max_count_tokens_drop: float = 0.0  # count_tokens validity may drop at most this (fraction)
    max_latency_growth: float = 0.20  # p95 TTFT / latency may grow at most this fraction...
    latency_floor_ms: float = 50.0  # ...and growth under this many milliseconds never fails
    max_error_growth: float = 0.0  # errors per run may grow at most this much
    noise_sigma: float = 2.0  # noise band = sigma x standard error of the difference; 0 disables
    allow_regressions: tuple[str, ...] = ()  # scenario ids allowed to go from pass to fail
    allow_missing: bool = False  # baseline scenarios the candidate did not run are skipped instead of failing


THRESHOLD_NAMES = tuple(f.name for f in fields(GateThresholds))
VERDICTS = ("pass", "fail", "noise", "allowed", "skip")


@dataclass(frozen=True)
class Check:
    """One threshold check, with the numbers and the sentence the report shows."""

    name: str
    label: str
    kind: str  # format kind of baseline / candidate (see report_data.format_value)
    baseline: float | None
    candidate: float | None
    delta: str
    threshold: str
    verdict: str
    reason: str
    noise: NoiseBand | None = None


@dataclass(frozen=True)
class ScenarioCheck:
    id: str
    baseline_passed: bool | None
    candidate_passed: bool | None
    verdict: str
    reason: str
    failure_class: str | None = None


@dataclass(frozen=True)
class GateResult:
    baseline: RunView
    candidate: RunView
    thresholds: GateThresholds
    checks: list[Check]
    scenario_checks: list[ScenarioCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Check | ScenarioCheck]:
        return [c for c in [*self.checks, *self.scenario_checks] if c.verdict == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def verdict_line(self) -> str:
        noisy = [c.label for c in self.checks if c.verdict == "noise"]
        noise_text = f"; within noise: {', '.join(noisy)}" if noisy else ""
        if self.passed:
            return f"PASS: {self.candidate.label} holds against {self.baseline.label}{noise_text}"
        names = [c.label if isinstance(c, Check) else f"scenario {c.id}" for c in self.failures]
        return f"FAIL: {len(names)} regression(s): {', '.join(names)}{noise_text}"


def load_gate_config(path: str | Path) -> dict[str, Any]:
    """Read gate.yaml into threshold overrides; dashes or underscores in keys, unknown keys rejected."""
    data = load_yaml_file(path, "gate config", GateConfigError)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise GateConfigError(f"{path}: expected a mapping of threshold names to values")
    data = data.get("gate", data) if isinstance(data.get("gate"), Mapping) else data
    overrides: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in THRESHOLD_NAMES:
            raise GateConfigError(f"{path}: unknown key {raw_key!r} (known: {', '.join(THRESHOLD_NAMES)})")
        overrides[key] = _checked_value(key, value, str(path))
    return overrides


def _checked_value(key: str, value: object, where: str) -> Any:
    if key == "allow_regressions":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GateConfigError(f"{where}: allow_regressions must be a list of scenario ids")
        return tuple(value)
    if key == "allow_missing":
        if not isinstance(value, bool):
            raise GateConfigError(f"{where}: allow_missing must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise GateConfigError(f"{where}: {key} must be a non-negative number, got {value!r}")
    if key == "min_schema_validity" and value > 1:
        raise GateConfigError(f"{where}: min_schema_validity is a fraction in [0, 1], got {value!r}")
    return float(value)


def build_thresholds(config: Mapping[str, Any], flags: Mapping[str, Any]) -> GateThresholds:
    """Defaults, then gate.yaml, then command-line flags (flags win; allowed scenario lists are merged)."""
    merged = {**config, **{k: v for k, v in flags.items() if v is not None and k != "allow_regressions"}}
    allowed = tuple(
        dict.fromkeys([*config.get("allow_regressions", ()), *flags.get("allow_regressions", ())])
    )
    for key, value in merged.items():
        if key != "allow_regressions":
            _checked_value(key, value, "--" + key.replace("_", "-"))
    return replace(GateThresholds(), **{**merged, "allow_regressions": allowed})


def evaluate_gate(baseline: RunView, candidate: RunView, thresholds: GateThresholds) -> GateResult:
    """Run every check; raises ResultsError when the two files cannot be compared at all."""
    for run in (baseline, candidate):
        stopped = interruption(run)
        if stopped:  # its rates cover whichever scenarios happened to finish: no basis for a verdict
            raise ResultsError(
                f"{run.source} is a partial run ({stopped}): gate complete runs only; rerun it"
            )
    common = [s for s in scenario_ids([baseline]) if candidate.scenario(s) is not None]
    if not common:
        raise ResultsError(
            f"{baseline.source} and {candidate.source} have no scenarios in common "
            f"(baseline: {_preview(scenario_ids([baseline]))}; candidate: {_preview(scenario_ids([candidate]))}); "
            "run both with the same --suite / --scenario selection"
        )
    notes = []
    if baseline.repeats > 1 or candidate.repeats > 1:
        if baseline.per_repeat and candidate.per_repeat and thresholds.noise_sigma > 0:
            notes.append(
                f"noise rule: a breached threshold whose repeat-mean difference is within "
                f"{thresholds.noise_sigma:g} standard errors (baseline {len(baseline.per_repeat)} repeats, "
                f"candidate {len(candidate.per_repeat)}) is reported as within noise and does not fail"
            )
        elif thresholds.noise_sigma > 0:
            notes.append("repeats without summary.per_repeat in both files: plain thresholds apply")
    else:
        notes.append("single runs (no --repeat): plain thresholds apply, no noise band")
    notes += condition_notes([baseline, candidate], ["baseline", "candidate"])
    unknown = [s for s in thresholds.allow_regressions if baseline.scenario(s) is None]
    if unknown:
        notes.append(f"allowed regressions not in the baseline: {', '.join(unknown)}")
    checks = [
        _schema_check(baseline, candidate, thresholds),
        _tool_check(baseline, candidate, thresholds),
        _spurious_check(baseline, candidate, thresholds),
        _count_tokens_check(baseline, candidate, thresholds),
        _latency_check("ttft_p95", "TTFT p95", baseline, candidate, thresholds),
        _latency_check("latency_p95", "Latency p95", baseline, candidate, thresholds),
        _error_check(baseline, candidate, thresholds),
    ]
    return GateResult(
        baseline, candidate, thresholds, checks, _scenario_checks(baseline, candidate, thresholds), notes
    )


def _preview(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (f", … ({len(ids)} in all)" if len(ids) > 5 else "") if ids else "none"


def _samples(run: RunView, key: str) -> list[float]:
    return [value for item in run.per_repeat if (value := item.get(key)) is not None]


def _band_value(key: str, value: float) -> str:
    """A noise-band number as the check's unit reads: `1,590 ms` for latencies, else 3 significant digits."""
    return f"{value:,.0f} ms" if key in ("ttft_p95", "latency_p95") else f"{value:.3g}"


def _gross(excess: float, allowed: float) -> bool:
    """A breach beyond twice a non-zero threshold, which the noise band never excuses (see `_judge`)."""
    return allowed > 0 and excess > 2 * allowed + EPSILON


def _judge(
    key: str,
    breached: bool,
    reason: str,
    base: RunView,
    cand: RunView,
    t: GateThresholds,
    gross: bool = False,
) -> tuple[str, str, NoiseBand | None]:
    """Turn a breach into fail or noise (repeat spread), returning (verdict, reason, band). A `gross` breach
    (beyond twice a non-zero threshold) is never excused: with 3 repeats, one lucky candidate repeat widens the
    band enough to call a +239 % latency "noise"."""
    if not breached:
        return "pass", reason, None
    band = noise_band(_samples(base, key), _samples(cand, key), t.noise_sigma)
    delta = _band_value(key, abs(band.delta_mean)) if band is not None else ""
    width = _band_value(key, band.band) if band is not None else ""
    if band is not None and band.within and gross:
        return "fail", f"{reason}: over twice the threshold, which the noise band never excuses", band
    if band is not None and band.within:
        return "noise", f"{reason}, but within noise (|Δ mean| {delta} ≤ band {width})", band
    if band is not None:
        reason += f", outside the noise band (|Δ mean| {delta} > {width})"
    return "fail", reason, band


def _skipped(
    name: str, label: str, kind: str, base: float | None, cand: float | None, threshold: str
) -> Check:
    side = "baseline" if base is None else "candidate"
    return Check(name, label, kind, base, cand, "—", threshold, "skip", f"not measured in the {side} (null)")


def _schema_check(base: RunView, cand: RunView, t: GateThresholds) -> Check:
    b, c = base.metrics["schema_validity"], cand.metrics["schema_validity"]
    threshold = f"≥ {format_value('rate', t.min_schema_validity)}"
    if c is None:
        return _skipped("schema_validity", "Schema validity", "rate", b, c, threshold)
    breached = c < t.min_schema_validity - EPSILON
    # A broken protocol is never noise: no repeat band for this check.
    reason = f"candidate {format_value('rate', c)} {'<' if breached else '≥'} {format_value('rate', t.min_schema_validity)}"
    delta = _points(c - b) if b is not None else "—"
    return Check(
        "schema_validity",
        "Schema validity",
        "rate",
        b,
        c,
        delta,
        threshold,
        "fail" if breached else "pass",
        reason,
    )


def _tool_check(base: RunView, cand: RunView, t: GateThresholds) -> Check:
    return _rate_check(
        "tool_call_success", "Tool-call success", base, cand, t, t.max_tool_drop, "drop", "dropped"
    )


def _spurious_check(base: RunView, cand: RunView, t: GateThresholds) -> Check:
    """A model that starts calling tools where a plain answer was wanted breaks Claude Code sessions too."""
    return _rate_check(
        "spurious_tool_calls", "Spurious tool calls", base, cand, t, t.max_spurious_growth, "growth", "grew"
    )


def _count_tokens_check(base: RunView, cand: RunView, t: GateThresholds) -> Check:
    """Claude Code sizes its context (and decides when to compact) from count_tokens: a drop is a break."""
    return _rate_check(
        "count_tokens_validity",
        "count_tokens validity",
        base,
        cand,
        t,
        t.max_count_tokens_drop,
        "drop",
        "dropped",
    )


def _rate_check(
    key: str,
    label: str,
    base: RunView,
    cand: RunView,
    t: GateThresholds,
    allowed: float,
    noun: str,
    verb: str,
) -> Check:
    """A rate that may move the wrong way by at most `allowed` points: down for "drop", up for "growth"."""
    b, c = base.metrics[key], cand.metrics[key]
    threshold = f"{noun} ≤ {allowed * 100:.1f} pts"
    if b is None or c is None:
        return _skipped(key, label, "rate", b, c, threshold)
    worse = b - c if noun == "drop" else c - b
    breached = worse > allowed + EPSILON
    reason = f"{verb} {worse * 100:.1f} pts" if worse > 0 else f"no {noun}"
    verdict, reason, band = _judge(key, breached, reason, base, cand, t, _gross(worse, allowed))
    return Check(key, label, "rate", b, c, _points(c - b), threshold, verdict, reason, band)


def _latency_check(key: str, label: str, base: RunView, cand: RunView, t: GateThresholds) -> Check:
    b, c = base.metrics[key], cand.metrics[key]
    threshold = f"growth ≤ {t.max_latency_growth * 100:.0f} % or ≤ {t.latency_floor_ms:g} ms"
    if b is None or c is None:
        return _skipped(key, label, "ms", b, c, threshold)
    grown_ms = c - b
    growth = grown_ms / b if b > 0 else (math.inf if grown_ms > 0 else 0.0)
    over_ratio = growth > t.max_latency_growth + EPSILON
    breached = over_ratio and grown_ms > t.latency_floor_ms
    growth_text = "∞" if math.isinf(growth) else f"{growth * 100:+.0f} %"
    reason = f"{growth_text} ({_signed_duration(grown_ms)})"
    if over_ratio and not breached:
        reason += f", under the {t.latency_floor_ms:g} ms absolute floor"
    verdict, reason, band = _judge(key, breached, reason, base, cand, t, _gross(growth, t.max_latency_growth))
    delta = f"{_signed_duration(grown_ms)} ({growth_text})"
    return Check(key, label, "ms", b, c, delta, threshold, verdict, reason, band)


def _error_check(base: RunView, cand: RunView, t: GateThresholds) -> Check:
    b, c = base.metrics["errors_per_run"], cand.metrics["errors_per_run"]
    threshold = f"growth ≤ {t.max_error_growth:g} per run"
    if b is None or c is None:
        return _skipped("errors", "Errors per run", "count", b, c, threshold)
    breached = c - b > t.max_error_growth + EPSILON
    reason = f"{c - b:+g} errors per run" if c != b else "no change"
    verdict, reason, band = _judge(
        "errors", breached, reason, base, cand, t, _gross(c - b, t.max_error_growth)
    )
    return Check("errors", "Errors per run", "count", b, c, f"{c - b:+g}", threshold, verdict, reason, band)


def _signed_duration(ms: float) -> str:
    """+700 ms, or -158.1 s for long ones (CPU backends answer in minutes)."""
    return f"{ms / 1000:+,.1f} s" if abs(ms) >= 10_000 else f"{ms:+,.0f} ms"


def _points(delta: float) -> str:
    return f"{delta * 100:+.1f} pts"


def _broke_completely(base: ScenarioView, cand: ScenarioView) -> bool:
    """Passed in some baseline repeats (flaky) and in no candidate repeat: a regression, not "fails in both"."""
    return (base.pass_rate or 0.0) > EPSILON and (cand.pass_rate or 0.0) <= EPSILON


def _scenario_checks(base: RunView, cand: RunView, t: GateThresholds) -> list[ScenarioCheck]:
    """A scenario that passed (every turn, every repeat) in the baseline must pass in the candidate, and one that
    passed in some baseline repeats must pass in at least one candidate repeat."""
    checks = []
    for scenario_id in scenario_ids([base, cand]):
        b, c = base.scenario(scenario_id), cand.scenario(scenario_id)
        if b is None:  # new in the candidate: nothing to hold it to
            checks.append(ScenarioCheck(scenario_id, None, c and c.passed, "skip", "not in the baseline"))
            continue
        if c is None:  # a candidate that runs less must not pass on what it left out (nor gain in the rates)
            verdict, reason = (
                ("skip", "not in the candidate (allowed)")
                if t.allow_missing
                else (
                    "fail",
                    "in the baseline, not run by the candidate (same --suite / --scenario for both)",
                )
            )
            checks.append(ScenarioCheck(scenario_id, b.passed, None, verdict, reason))
            continue
        failure = c.failure_class
        if c.passed:
            reason = "fixed (failed in the baseline)" if not b.passed else "passes in both"
            checks.append(ScenarioCheck(scenario_id, b.passed, True, "pass", reason))
        elif not b.passed and not _broke_completely(b, c):
            checks.append(
                ScenarioCheck(scenario_id, False, False, "pass", "fails in both: not a regression", failure)
            )
        else:
            counts = c.pass_count(cand.repeats).replace(")", " repeats passed)")
            if b.passed:
                reason = f"passed in the baseline, fails in the candidate: {failure or 'failed'}{counts}"
            else:  # flaky in the baseline, broken in the candidate
                reason = (
                    f"passed in {b.pass_count(base.repeats).strip(' ()')} baseline repeats, in none of the "
                    f"candidate's: {failure or 'failed'}{counts}"
                )
            allowed = scenario_id in t.allow_regressions
            verdict = "allowed" if allowed else "fail"
            checks.append(
                ScenarioCheck(
                    scenario_id, b.passed, False, verdict, reason + (" (allowed)" if allowed else ""), failure
                )
            )
    return checks
