"""Read results files (DESIGN section 5 + the INTERFACES extensions) into plain views for the reports.

Results files are user input: this loader checks the fixed contract, tolerates the absence of every
extension field (older or contract-only files still compare), and turns any defect into a `ResultsError`
that the commands print as a usage error (exit 2), never a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report_metrics import PER_REPEAT_KEYS, SUMMARY_PATHS
from harness.results_layout import COUNT_TOKENS, request_order, upgrade_layout
from harness.turn_fields import derive_failure_class, token_count
from harness.validation import schema_problems_at
from proxy.datafile import load_json_file

SCHEMA_VERSION = 1


class ResultsError(Exception):
    """A results file that cannot be read, or is not a ccbench results file this version understands."""


@dataclass(frozen=True)
class TurnView:
    """One scored turn, with the pass/fail derived when the results file predates the extensions."""

    index: int
    repeat: int
    kind: str
    stream: bool | None
    passed: bool
    failure_class: str | None
    problems: list[str]
    expected_tools: list[str]
    tool_calls: list[dict[str, Any]]
    error: dict[str, Any] | None
    latency_ms: float | None
    stop_reason: str | None = None
    output_tokens: int | None = None  # at a max_tokens stop, the most the turn was allowed


@dataclass(frozen=True)
class ScenarioView:
    id: str
    suite: str
    passed: bool
    pass_rate: float | None
    failure_class: str | None
    turns: list[TurnView]  # messages turns and count_tokens calls (kind), in the order the run sent them

    @property
    def failing_turns(self) -> list[TurnView]:
        return [turn for turn in self.turns if not turn.passed]

    def pass_count(self, repeats: int) -> str:
        """The "(2/3)" suffix: in how many repeats every turn passed; empty for single runs."""
        if repeats <= 1 or self.pass_rate is None:
            return ""
        return f" ({round(self.pass_rate * repeats)}/{repeats})"

    def turn_names(self, repeated: bool) -> list[str]:
        """A readable name per turn, unique within the scenario (a scenario may replay one turn streamed
        and not streamed, or add a count_tokens call)."""
        names = []
        for turn in self.turns:
            name = f"turn {turn.index}" + (f" repeat {turn.repeat}" if repeated else "")
            if turn.kind != "messages":
                name += f" ({turn.kind})"
            elif turn.stream is not None and _collides(self.turns, turn):
                name += " (stream)" if turn.stream else " (non-stream)"
            names.append(name)
        return [name if names.count(name) == 1 else f"{name} #{i}" for i, name in enumerate(names)]


@dataclass(frozen=True)
class RunView:
    """Everything the reports need from one results file."""

    source: str
    model: str
    preset: str
    base_url: str
    created_at: str
    repeats: int
    metrics: dict[str, float | None]
    per_repeat: list[dict[str, float | None]]
    failure_classes: dict[str, int]
    scenarios: list[ScenarioView] = field(default_factory=list)
    conditions: dict[str, object] = field(default_factory=dict)  # the file's "run" (older files: empty)

    @property
    def label(self) -> str:
        return f"{self.model} · {self.preset}" if self.preset else self.model

    def scenario(self, scenario_id: str) -> ScenarioView | None:
        return next((s for s in self.scenarios if s.id == scenario_id), None)


def load_results_file(path: str | Path) -> RunView:
    """Read and check one results file; every problem becomes a ResultsError naming the file.

    Beyond the shape the views need, the file must follow the results JSON Schema: a gate must not pass a
    candidate whose file claims a schema validity of 1e40 or -1 errors (a corrupted or hand-edited file)."""
    data = upgrade_layout(load_json_file(path, "results file", ResultsError))
    view = parse_results(data, str(path))  # the common mistakes first, with their own messages
    problem = contract_problem(data, str(path))
    if problem:
        raise ResultsError(problem)
    return view


def contract_problem(data: object, source: str) -> str | None:
    """Why a results object does not follow harness/schemas/results.json, naming fields and rules (None when it
    does): the one message for every reader of results files."""
    problems = [line.lstrip(".") for line in schema_problems_at("results", "", data, "")]
    if not problems:
        return None
    listed = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    return f"{source}: does not follow the results contract: {listed}"


def to_run_views(results_or_list: Any, source: str = "ccbench run (in memory)") -> list[RunView]:
    """Accept a results dict, a RunView, an object with to_dict(), or a list of them (for `ccbench run`)."""
    items = results_or_list if isinstance(results_or_list, list | tuple) else [results_or_list]
    views = []
    for number, item in enumerate(items):
        if isinstance(item, RunView):
            views.append(item)
            continue
        if hasattr(item, "to_dict"):
            item = item.to_dict()
        views.append(parse_results(item, source if len(items) == 1 else f"{source}[{number}]"))
    return views


def schema_version_problem(data: Mapping, source: str) -> str | None:
    """Why this ccbench cannot read a results object of another schema_version (None when it can)."""
    version = data.get("schema_version")
    if version == SCHEMA_VERSION:
        return None
    return (
        f"{source}: schema_version {version!r} is not supported (this ccbench reads schema_version "
        f"{SCHEMA_VERSION}); is this a `ccbench run --out` file?"
    )


def parse_results(data: object, source: str) -> RunView:
    """Check the fixed contract (schema_version, summary, scenarios) and build the view (either layout)."""
    data = upgrade_layout(data)
    if not isinstance(data, Mapping):
        raise ResultsError(f"{source}: expected a JSON object (a ccbench results file), got {_kind(data)}")
    problem = schema_version_problem(data, source)
    if problem:
        raise ResultsError(problem)
    if data.get("kind") == "live":
        raise ResultsError(
            f"{source} is a `ccbench live` report (task success of the real CLI), not a `ccbench run` results file: "
            "compare and gate read the files of `ccbench run --out`"
        )
    for key in ("summary", "scenarios"):
        if key not in data:
            raise ResultsError(
                f"{source}: the '{key}' key is missing (a `ccbench run --out` file has summary and scenarios)"
            )
    summary = data["summary"]
    if not isinstance(summary, Mapping):
        raise ResultsError(f"{source}: 'summary' must be an object, got {_kind(summary)}")
    scenarios = data["scenarios"]
    if not isinstance(scenarios, list):
        raise ResultsError(f"{source}: 'scenarios' must be a list, got {_kind(scenarios)}")
    backend = data.get("backend") if isinstance(data.get("backend"), Mapping) else {}
    metrics = {key: _summary_number(summary, path, source) for key, path in SUMMARY_PATHS.items()}
    repeats = summary.get("repeats")
    repeats = repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats > 0 else 1
    # what compare shows and the gate judges: `summary.errors` sums every repeat, so a `--repeat 3` run's total
    # is not comparable with a single run's
    metrics["errors_per_run"] = None if metrics["errors"] is None else metrics["errors"] / repeats
    return RunView(
        source=source,
        model=_text(data.get("model")) or "(unknown model)",
        preset=_text(backend.get("preset")),
        base_url=_text(backend.get("base_url")),
        created_at=_text(data.get("created_at")),
        repeats=repeats,
        metrics=metrics,
        per_repeat=_per_repeat(summary.get("per_repeat"), source),
        failure_classes=_failure_classes(summary.get("failure_classes")),
        scenarios=_unique([_scenario(item, number, source) for number, item in enumerate(scenarios)], source),
        conditions=dict(data["run"]) if isinstance(data.get("run"), Mapping) else {},
    )


def _unique(scenarios: list[ScenarioView], source: str) -> list[ScenarioView]:
    """Scenarios are compared by id: a file with an id twice would compare one of them at random."""
    seen: set[str] = set()
    for scenario in scenarios:
        if scenario.id in seen:
            raise ResultsError(f"{source}: scenario {scenario.id!r} appears more than once")
        seen.add(scenario.id)
    return scenarios


def _scenario(item: object, number: int, source: str) -> ScenarioView:
    where = f"{source}: scenarios[{number}]"
    if not isinstance(item, Mapping):
        raise ResultsError(f"{where} must be an object, got {_kind(item)}")
    scenario_id = item.get("id")
    if not isinstance(scenario_id, str) or not scenario_id:
        raise ResultsError(f"{where}.id must be a non-empty string")
    raw_turns = _entries(item, "turns", where)
    raw_calls = _entries(item, COUNT_TOKENS, where)
    turns = request_order(
        [_turn(turn, position) for position, turn in enumerate(raw_turns)],
        [_turn(call, position, COUNT_TOKENS) for position, call in enumerate(raw_calls)],
    )
    passed = item.get("passed")
    if not isinstance(passed, bool):
        passed = all(turn.passed for turn in turns)
    elif passed and (failed := next((turn for turn in turns if not turn.passed), None)) is not None:
        # a gate must not take a scenario's word over its own turns (a hand-edited or merged file)
        what = "count_tokens call" if failed.kind == COUNT_TOKENS else "turn"
        raise ResultsError(
            f"{where} ({scenario_id}) says passed, but its {what} {failed.index} (repeat {failed.repeat}) failed:"
            " the file contradicts itself"
        )
    failure_class = item.get("failure_class")
    if not isinstance(failure_class, str):
        failure_class = next((t.failure_class for t in turns if t.failure_class), None)
    pass_rate = _finite(item.get("pass_rate"), f"scenarios[{number}].pass_rate", source)
    return ScenarioView(
        id=scenario_id,
        suite=_text(item.get("suite")),
        passed=passed,
        pass_rate=pass_rate if pass_rate is not None else _pass_rate(turns),
        failure_class=None if passed else failure_class,
        turns=turns,
    )


def _entries(item: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    raw = item.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        raise ResultsError(f"{where}.{key} must be a list of objects")
    return raw


def _turn(raw: Mapping[str, Any], position: int, kind: str | None = None) -> TurnView:
    """A view of a turns[] entry, or of a count_tokens[] entry (kind "count_tokens")."""
    error = raw.get("error") if isinstance(raw.get("error"), Mapping) else None
    tool_calls = [c for c in raw.get("tool_calls") or [] if isinstance(c, Mapping)]
    failed = bool(
        error
        or raw.get("schema_valid") is False
        or raw.get("tool_call_success") is False
        or raw.get("spurious_tool_call") is True
    )
    passed = raw.get("passed")
    if not isinstance(passed, bool):
        passed = not failed
    elif passed and failed:  # a stored verdict that its own fields refute: the stricter reading wins
        passed = False
    failure_class = raw.get("failure_class")
    if not isinstance(failure_class, str) or passed:
        failure_class = None if passed else derive_failure_class(raw, error, tool_calls)
    index, repeat = raw.get("index"), raw.get("repeat")
    return TurnView(
        index=index if isinstance(index, int) else position,
        repeat=repeat if isinstance(repeat, int) else 0,
        kind=kind or _text(raw.get("kind")) or "messages",
        stream=raw.get("stream") if isinstance(raw.get("stream"), bool) else None,
        passed=passed,
        failure_class=failure_class,
        problems=[str(p) for p in raw.get("problems") or []],
        expected_tools=[str(t) for t in raw.get("expected_tools") or []],
        tool_calls=[dict(c) for c in tool_calls],
        error=dict(error) if error else None,
        latency_ms=_number_or_none(raw.get("latency_ms")),
        stop_reason=raw.get("stop_reason") if isinstance(raw.get("stop_reason"), str) else None,
        output_tokens=token_count(raw.get("output_tokens")),
    )


def _collides(turns: list[TurnView], turn: TurnView) -> bool:
    return sum((t.index, t.repeat, t.kind) == (turn.index, turn.repeat, turn.kind) for t in turns) > 1


def _pass_rate(turns: list[TurnView]) -> float | None:
    repeats = sorted({turn.repeat for turn in turns})
    if not repeats:
        return None
    passed = sum(all(t.passed for t in turns if t.repeat == r) for r in repeats)
    return passed / len(repeats)


def _per_repeat(raw: object, source: str) -> list[dict[str, float | None]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        raise ResultsError(f"{source}: summary.per_repeat must be a list of objects")
    return [
        {
            key: _finite(item.get(name), f"summary.per_repeat[{i}].{name}", source)
            for name, key in PER_REPEAT_KEYS.items()
        }
        for i, item in enumerate(raw)
    ]


def _finite(value: object, where: str, source: str) -> float | None:
    """A number or null; NaN and infinities (JSON spellings Python accepts) are a broken file, not "unmeasured":
    read as null they would drop repeats from the gate's noise band without a word."""
    if value is None:
        return None
    number = _number_or_none(value)
    if number is None:
        raise ResultsError(f"{source}: {where} must be a number or null, got {_kind(value)}")
    return number


def _failure_classes(raw: object) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): int(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _summary_number(summary: Mapping[str, Any], path: tuple[str, ...], source: str) -> float | None:
    value: object = summary
    for depth, part in enumerate(path):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            where = ".".join(path[:depth])
            raise ResultsError(f"{source}: summary.{where} must be an object or null, got {_kind(value)}")
        value = value.get(part)
    return _finite(value, f"summary.{'.'.join(path)}", source)


def _number_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _kind(value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{json.dumps(value)} (not a finite number)"  # NaN, Infinity: JSON spellings Python accepts
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
