"""Run conditions (the results file's "run": concurrency, timeout, output cap) and where two runs differ in them.

Latency measured with four requests in flight is not latency with one, and a cap on output tokens cuts long
answers: gate and compare still report such runs side by side, but say so, with the setting to change. A run
stopped early (`interrupted`) covers only the scenarios that finished: compare says so, gate refuses it.
Files written before "run" existed have no conditions and are not compared. Pure.
"""

from __future__ import annotations

from harness.report_data import RunView

# condition -> (the `ccbench run` option that sets it, what a difference makes incomparable)
CONDITIONS = {
    "concurrency": ("--concurrency", "latency is measured under different load"),
    "max_output_tokens": (
        "--max-output-tokens",
        "a cap cuts long answers, tool calls among them, and their time",
    ),
    "timeout_s": ("--timeout", "a turn one run waited for can be an error in the other"),
}


def _shown(value: object) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def interrupted_text(finished: object, planned: object, unit: str = "requests") -> str:
    return f"interrupted after {finished} of {planned} {unit}"


def interruption(run: RunView) -> str | None:
    """`interrupted after 24 of 68 requests` for a run stopped early (Ctrl-C, SIGTERM), else None."""
    stopped = run.conditions.get("interrupted")
    if not isinstance(stopped, dict):
        return None
    return interrupted_text(stopped.get("finished"), stopped.get("planned"))


def condition_notes(runs: list[RunView], names: list[str]) -> list[str]:
    """A note per interrupted run, then one per condition the runs recorded differently, with each value."""
    notes = [
        f"{name} was {stopped}: its numbers cover only the {len(run.scenarios)} scenarios that finished"
        for run, name in zip(runs, names, strict=True)
        if (stopped := interruption(run))
    ]
    recorded = [(run, name) for run, name in zip(runs, names, strict=True) if run.conditions]
    if len(recorded) < 2:
        return notes
    for key, (option, effect) in CONDITIONS.items():
        values = [run.conditions.get(key) for run, _ in recorded]
        if len(set(map(_shown, values))) > 1:
            each = ", ".join(
                f"{name} {_shown(value)}" for (_, name), value in zip(recorded, values, strict=True)
            )
            notes.append(
                f"the runs used different {option} ({each}): {effect}; "
                "rerun with one setting to compare like with like"
            )
    return notes


def describe(run: RunView) -> str | None:
    """`4 at once · timeout 600 s · output cap none` for a report card; None for files without conditions."""
    if not run.conditions:
        return None
    c = run.conditions
    text = (
        f"{_shown(c.get('concurrency'))} at once · timeout {_shown(c.get('timeout_s'))} s · "
        f"output cap {_shown(c.get('max_output_tokens'))}"
    )
    stopped = interruption(run)
    return f"{text} · {stopped}" if stopped else text
