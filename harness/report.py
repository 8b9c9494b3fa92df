"""Reports over results files: the public entry points used by `ccbench run`, `compare` and `gate`.

`write_html`, `write_markdown` and `write_junit_run` take results dicts (as `ccbench run` holds them),
`RunView`s, or lists of either. The rich terminal tables live here too; the formats live in
report_html / report_markdown / junit, and the gate's decisions in harness.gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from harness.commands.options import write_output_file
from harness.diagnosis import diagnose
from harness.gate import GateResult
from harness.junit import junit_text, run_junit
from harness.report_data import ResultsError, RunView, load_results_file, to_run_views
from harness.report_html import render_html
from harness.report_labels import best_rows, format_value, model_names, scenario_ids, unique_labels
from harness.report_markdown import compare_markdown
from harness.report_metrics import COMPARE_METRICS

__all__ = [
    "ResultsError",
    "compare_table",
    "console_for_output",
    "failing_scenarios_table",
    "gate_table",
    "load_results_file",
    "print_diagnosis",
    "print_gate",
    "write_html",
    "write_junit_run",
    "write_markdown",
    "write_output",
]

VERDICT_STYLES = {"pass": "green", "fail": "bold red", "noise": "yellow", "allowed": "magenta", "skip": "dim"}
VERDICT_TEXT = {"pass": "pass", "fail": "FAIL", "noise": "within noise", "allowed": "allowed", "skip": "skip"}


def write_html(results_or_list: Any, path: str | Path) -> None:
    """One self-contained HTML file for one run or several."""
    Path(path).write_text(render_html(to_run_views(results_or_list)), encoding="utf-8")


def write_markdown(results_or_list: Any, path: str | Path) -> None:
    """The compare table plus the per-scenario matrix, ready for a PR comment."""
    Path(path).write_text(compare_markdown(to_run_views(results_or_list)), encoding="utf-8")


def write_junit_run(results: Any, path: str | Path) -> None:
    """JUnit XML for a single run: one testcase per scenario turn."""
    views = to_run_views(results)
    if len(views) != 1:
        raise ValueError(f"write_junit_run takes one run, got {len(views)}")
    Path(path).write_text(junit_text(run_junit(views[0])), encoding="utf-8")


def console_for_output() -> Console:
    """A rich console; wide when writing to a CI log (not a terminal) so the tables do not wrap."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 180))


def write_output(path: str | Path, text: str, console: Console) -> None:
    """Write a report file for a command (missing folders made; an unwritable path is a usage error, exit 2)."""
    write_output_file(path, text)
    console.print(f"wrote {path}", style="dim", markup=False, highlight=False)


def compare_table(runs: list[RunView]) -> CompareTable:
    """One row per run, the best value in each column in bold green (laid out at the width it is printed at)."""
    best = {s.key: best_rows([r.metrics[s.key] for r in runs], s.higher_is_better) for s in COMPARE_METRICS}
    rows: list[list[Text]] = []
    for i, (run, name) in enumerate(zip(runs, model_names(runs), strict=True)):
        cells = [Text(name), Text(run.preset or "—")]
        for spec in COMPARE_METRICS:
            style = "bold green" if i in best[spec.key] else ""
            cells.append(Text(format_value(spec.kind, run.metrics[spec.key]), style=style))
        rows.append(cells)
    return CompareTable(["Model", "Backend", *(spec.label for spec in COMPARE_METRICS)], rows)


class CompareTable:
    """The compare table, a row per run, or turned (a column per run) when that is wider than the console: rich
    would otherwise shrink the columns and cut names with "…", so that "Qwen2.5-Coder-32B-Instruct-AWQ" and
    "…-GPTQ" both showed as "Qwen2.…". Decided at render time, so every console gets the layout that fits."""

    def __init__(self, headers: list[str], rows: list[list[Text]]) -> None:
        self.headers = headers
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def table(self, width: int) -> Table:
        """The table for a console `width` columns wide."""
        cells = [
            max((row[column].cell_len for row in self.rows), default=1) for column in range(len(self.headers))
        ]
        widths = [max(_narrowest(header), cell) for header, cell in zip(self.headers, cells, strict=True)]
        # 3 per column: its padding and border; 1: the last border
        spare = width - (sum(widths) + 3 * len(widths) + 1)
        if spare < 0:
            return self._turned()
        needs = sorted((len(header) - widths[column], column) for column, header in enumerate(self.headers))
        for need, column in needs:  # as many headers on one line as the room allows, the cheapest first
            if 0 < need <= spare:
                widths[column] += need
                spare -= need
        table = Table(title="ccbench compare", header_style="bold")
        for column, header in enumerate(self.headers):
            table.add_column(  # fixed widths that fit: rich's own shrinking split "count_tokens" even so
                header,
                justify="left" if column < 2 else "right",
                overflow="fold",
                width=widths[column],
            )
        for cells in self.rows:
            table.add_row(*cells)
        return table

    def _turned(self) -> Table:
        """A row per metric, a column per run headed by its name (folded onto more lines, never cut)."""
        table = Table(title="ccbench compare", header_style="bold")
        table.add_column("", overflow="fold")  # the metric names: folded too, never cut ("count_tok…")
        for cells in self.rows:
            table.add_column(cells[0], justify="right", overflow="fold")
        for metric, header in enumerate(self.headers[1:], start=1):
            table.add_row(Text(header), *(cells[metric] for cells in self.rows))
        return table


def _narrowest(header: str) -> int:
    """A header's narrowest width: its longest word (headers wrap between words)."""
    return max(len(word) for word in header.split())


def failing_scenarios_table(runs: list[RunView]) -> Table | None:
    """Scenarios that fail in at least one run, as a compact matrix; None when everything passed."""
    failing = [
        sid for sid in scenario_ids(runs) if any((s := r.scenario(sid)) and not s.passed for r in runs)
    ]
    if not failing:
        return None
    table = Table(title="Failing scenarios", header_style="bold")
    table.add_column("Scenario", overflow="fold")
    for label in unique_labels(runs):
        table.add_column(Text(label), overflow="fold")  # a narrow terminal folds a long label, never cuts it
    for sid in failing:
        cells = [Text(sid)]
        for run in runs:
            scenario = run.scenario(sid)
            if scenario is None:
                cells.append(Text("—", style="dim"))
            elif scenario.passed:
                cells.append(Text("pass", style="green"))
            else:
                cells.append(Text(f"fail: {scenario.failure_class or 'failed'}", style="red"))
        table.add_row(*cells)
    return table


def gate_table(result: GateResult) -> Table:
    """The threshold checks: metric, baseline, candidate, delta, threshold, verdict."""
    table = Table(title="ccbench gate", header_style="bold")
    for name in ("Check", "Baseline", "Candidate", "Delta", "Threshold", "Verdict", "Why"):
        table.add_column(name, justify="right" if name in ("Baseline", "Candidate", "Delta") else "left")
    for check in result.checks:
        table.add_row(
            check.label,
            format_value(check.kind, check.baseline),
            format_value(check.kind, check.candidate),
            check.delta,
            check.threshold,
            Text(VERDICT_TEXT[check.verdict], style=VERDICT_STYLES[check.verdict]),
            Text(check.reason),
        )
    regressed = [c for c in result.scenario_checks if c.verdict in ("fail", "allowed")]
    both = sum(bool(c.baseline_passed and c.candidate_passed) for c in result.scenario_checks)
    table.add_row(
        "Scenarios",
        "",
        "",
        "",
        "no pass → fail",
        Text(
            "FAIL" if any(c.verdict == "fail" for c in regressed) else "pass",
            style="bold red" if any(c.verdict == "fail" for c in regressed) else "green",
        ),
        Text(f"{both} of {len(result.scenario_checks)} pass in both; {len(regressed)} regressed"),
    )
    return table


def print_gate(result: GateResult, console: Console) -> None:
    console.print(gate_table(result))
    for check in result.scenario_checks:
        if check.verdict in ("fail", "allowed", "skip"):
            style = VERDICT_STYLES[check.verdict]
            console.print(
                Text(f"  scenario {check.id}: {VERDICT_TEXT[check.verdict]}: {check.reason}", style=style)
            )
        elif check.baseline_passed is False and check.candidate_passed is False:  # named, so none hides here
            console.print(Text(f"  scenario {check.id}: {check.reason}", style="dim"))
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"))
    print_diagnosis(result.candidate, "the candidate", console)
    console.print(Text(result.verdict_line, style="bold green" if result.passed else "bold red"))


def print_diagnosis(run: RunView, name: str, console: Console) -> None:
    """ "why NAME's turns failed:" and the lines of `harness.diagnosis`, when there are any."""
    why = diagnose(run)
    if why:
        console.print(Text(f"why {name}'s turns failed:", style="bold"))
        for line in why:
            console.print(Text(line), soft_wrap=True)
