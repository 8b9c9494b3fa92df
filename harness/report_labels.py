"""How reports name and format what they show: metric values for humans, the best value of a column, row labels
that stay unique when two results files share a model and backend, and scenario order across runs."""

from __future__ import annotations

from pathlib import Path

from harness.report_data import RunView
from harness.run_conditions import condition_notes


def format_value(kind: str, value: float | None) -> str:
    """Format a metric for humans; null (nothing measured) is an em dash, never 100 %."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f} %"
    if kind == "ms":
        if value >= 10_000:
            return f"{value / 1000:,.1f} s"
        return f"{value:,.0f} ms" if value >= 10 or value == 0 else f"{value:.1f} ms"
    if kind == "tps":
        return f"{value:,.1f}"
    return f"{round(value, 2):g}"  # a count, or a count per run (errors per run of a --repeat 3 run: 0.33)


def best_rows(values: list[float | None], higher_is_better: bool) -> set[int]:
    """Indices holding the best value; empty when fewer than two rows are comparable or all tie."""
    present = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(present) < 2 or len({v for _, v in present}) == 1:
        return set()
    best = max(v for _, v in present) if higher_is_better else min(v for _, v in present)
    return {i for i, v in present if v == best}


def scenario_ids(runs: list[RunView]) -> list[str]:
    """Scenario ids across runs, in first-seen order."""
    seen: dict[str, None] = {}
    for run in runs:
        for scenario in run.scenarios:
            seen.setdefault(scenario.id, None)
    return list(seen)


def coverage_note(runs: list[RunView]) -> str | None:
    """A warning when the runs did not all run the same scenarios: their rates then measure different work
    (a run of one easy scenario shows 100 % beside a full suite), or None when they did."""
    every = scenario_ids(runs)
    counts = [len({scenario.id for scenario in run.scenarios}) for run in runs]
    if all(count == len(every) for count in counts):
        return None
    names = [Path(run.source).name for run in runs]
    ran = ", ".join(f"{name} {count} of {len(every)}" for name, count in zip(names, counts, strict=True))
    return (
        f"The runs cover different scenarios ({ran}), so their rates are not comparable; "
        "run every model with the same --suite / --scenario selection."
    )


def _named(run: RunView) -> str:
    """`smoke.json (smoke)`: the file name with the suites it ran."""
    suites = sorted({scenario.suite for scenario in run.scenarios if scenario.suite})
    return f"{Path(run.source).name} ({', '.join(suites)})" if suites else Path(run.source).name


def _alone(runs: list[RunView]) -> list[RunView]:
    """The runs that share no scenario with any other run (none when there is only one run)."""
    ids = [{scenario.id for scenario in run.scenarios} for run in runs]
    return [
        run
        for i, run in enumerate(runs)
        if len(runs) > 1 and not any(ids[i] & other for j, other in enumerate(ids) if j != i)
    ]


def disjoint_note(runs: list[RunView]) -> str | None:
    """A warning naming the runs that share no scenario with any other run (a smoke run beside a claude-code
    run): their rows measure different work entirely. Gate refuses such a pair; compare still shows it, as
    it compares models, but must not let the table pass for a comparison of the same work."""
    alone = _alone(runs)
    if not alone:
        return None
    names = [_named(run) for run in alone]
    if len(alone) == len(runs) == 2:
        who = f"{names[0]} and {names[1]} share no scenario"
    elif len(alone) == len(runs):
        who = f"no two of {', '.join(names)} share a scenario"
    else:
        who = f"{', '.join(names)} {'shares' if len(names) == 1 else 'share'} no scenario with the other runs"
    return (
        f"{who}: their rows measure different work, not the same work on different models; "
        "run every model with the same --suite / --scenario selection (gate refuses such a pair)."
    )


def comparability_notes(runs: list[RunView]) -> list[str]:
    """Why the runs' numbers may not compare: no scenario in common, different scenarios, different run
    conditions (by file name)."""
    disjoint = disjoint_note(runs)
    # with no two runs sharing a scenario, "they cover different scenarios" says less than the note above
    coverage = coverage_note(runs) if len(_alone(runs)) < len(runs) else None
    notes = [note for note in (disjoint, coverage) if note]
    return notes + condition_notes(runs, [Path(run.source).name for run in runs])


def _file_tags(runs: list[RunView]) -> list[str]:
    """The file-name tag (" [file.json]") of runs sharing model and backend with another run, else ""."""
    labels = [run.label for run in runs]
    return [f" [{Path(run.source).name}]" if labels.count(run.label) > 1 else "" for run in runs]


def model_names(runs: list[RunView]) -> list[str]:
    """Model names for table rows; runs sharing model and backend get their file name appended."""
    return [run.model + tag for run, tag in zip(runs, _file_tags(runs), strict=True)]


def unique_labels(runs: list[RunView]) -> list[str]:
    """Row labels "model · backend [file]": the file name, where needed, comes last so that charts, which
    shorten labels in the middle, keep it."""
    return [run.label + tag for run, tag in zip(runs, _file_tags(runs), strict=True)]
