"""Markdown for pull-request comments: the compare table plus a scenario matrix, and the gate report.

Every string from a results file is escaped: a model name must not break a table or inject HTML."""

from __future__ import annotations

import re

from harness.diagnosis import diagnose
from harness.gate import GateResult
from harness.report_data import RunView, ScenarioView
from harness.report_labels import (
    best_rows,
    comparability_notes,
    format_value,
    model_names,
    scenario_ids,
    unique_labels,
)
from harness.report_metrics import COMPARE_METRICS

VERDICT_ICONS = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "noise": "〰️ within noise",
    "allowed": "⚠️ allowed",
    "skip": "⏭️ skip",
}


def md_escape(text: str) -> str:
    """Make untrusted text inert in a GitHub table cell: no pipes, tags, links, emphasis or line breaks."""
    text = re.sub(r"\s+", " ", text).strip()
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Intraword underscores (model_no_tool, q4_k_m) stay literal in GitHub Markdown, so "_" is left alone.
    return re.sub(r"([\\`*\[\]|#!~])", r"\\\1", text)


def md_code(text: str) -> str:
    """An id as inline code in a GitHub table cell, shown as it is: one line, pipes escaped (GitHub reads `\\|`
    even inside code), a fence longer than any run of backticks in it (HTML is inert inside code)."""
    text = re.sub(r"\s+", " ", text).strip().replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence, pad = "`" * (longest + 1), " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["---"] * len(header)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def summary_table(runs: list[RunView]) -> list[str]:
    """One row per run; the best value of each column in bold."""
    names = model_names(runs)
    best = {
        spec.key: best_rows([r.metrics[spec.key] for r in runs], spec.higher_is_better)
        for spec in COMPARE_METRICS
    }
    rows = []
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        cells = [md_escape(name), md_escape(run.preset or "—")]
        for spec in COMPARE_METRICS:
            text = format_value(spec.kind, run.metrics[spec.key])
            cells.append(f"**{text}**" if i in best[spec.key] else text)
        rows.append(cells)
    header = ["Model", "Backend"] + [spec.label for spec in COMPARE_METRICS]
    return _table(header, rows, ["---", "---"] + ["---:"] * len(COMPARE_METRICS))


def scenario_cell(scenario: ScenarioView | None, repeats: int) -> str:
    """✅ / ❌ with the failure class (and the pass count when repeated); — when the run lacks the scenario."""
    if scenario is None:
        return "—"
    counts = scenario.pass_count(repeats)
    if scenario.passed:
        return "✅" + counts
    return f"❌ {md_escape(scenario.failure_class or 'failed')}{counts}"


def scenario_matrix(runs: list[RunView]) -> list[str]:
    labels = unique_labels(runs)
    rows = [
        [md_code(sid)] + [scenario_cell(run.scenario(sid), run.repeats) for run in runs]
        for sid in scenario_ids(runs)
    ]
    return _table(["Scenario"] + [md_escape(label) for label in labels], rows)


def compare_markdown(runs: list[RunView]) -> str:
    lines = ["## ccbench compare", "", *summary_table(runs), ""]
    lines += ["Best value per column in **bold**. — means nothing to measure (null), never 100 %.", ""]
    for note in comparability_notes(runs):
        lines += [f"> ⚠️ {md_escape(note)}", ""]
    lines += ["### Scenarios", "", *scenario_matrix(runs), ""]
    return "\n".join(lines)


def gate_markdown(result: GateResult) -> str:
    icon = "✅" if result.passed else "❌"
    lines = [
        f"## ccbench gate: {icon} {md_escape(result.verdict_line)}",
        "",
        f"Baseline **{md_escape(result.baseline.label)}** (`{md_escape(result.baseline.source)}`) · candidate "
        f"**{md_escape(result.candidate.label)}** (`{md_escape(result.candidate.source)}`)",
        "",
    ]
    rows = [
        [
            c.label,
            format_value(c.kind, c.baseline),
            format_value(c.kind, c.candidate),
            c.delta,
            c.threshold,
            VERDICT_ICONS[c.verdict],
            md_escape(c.reason),
        ]
        for c in result.checks
    ]
    lines += _table(["Check", "Baseline", "Candidate", "Delta", "Threshold", "Verdict", "Why"], rows) + [""]
    scenario_rows = [
        [md_code(c.id), VERDICT_ICONS[c.verdict], md_escape(c.reason)]
        for c in result.scenario_checks
        if c.verdict != "pass" or c.baseline_passed is False  # fixed, or failing in both: named, not counted
    ]
    checks = result.scenario_checks
    both = sum(bool(c.baseline_passed and c.candidate_passed) for c in checks)
    still = sum(c.baseline_passed is False and c.candidate_passed is False for c in checks)
    still_text = f", {still} fail in both" if still else ""
    lines.append(f"### Scenarios ({both} of {len(checks)} pass in both{still_text})")
    if scenario_rows:
        lines += ["", *_table(["Scenario", "Verdict", "Why"], scenario_rows)]
    lines += [""] + [f"- {md_escape(note)}" for note in result.notes] + [""]
    why = diagnose(result.candidate)
    if why:  # backend text inside: a fence that no line can close (runs of backticks are cut to two)
        lines += ["### Why the candidate's turns failed", "", "````text"]
        lines += [re.sub("`{3,}", "``", line) for line in why] + ["````", ""]
    return "\n".join(lines)
