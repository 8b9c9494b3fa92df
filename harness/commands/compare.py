"""`ccbench compare`: several results files side by side (terminal table, Markdown, self-contained HTML)."""

from __future__ import annotations

import os

import click

from harness.commands.options import OutputFile
from harness.report import (
    compare_table,
    console_for_output,
    failing_scenarios_table,
    load_results_file,
    print_diagnosis,
    write_output,
)
from harness.report_data import ResultsError
from harness.report_html import render_html
from harness.report_labels import comparability_notes, unique_labels
from harness.report_markdown import compare_markdown


@click.command(name="compare")
@click.argument("results", nargs=-1, required=True, metavar="RESULTS.json...")
@click.option(
    "--html",
    "html_path",
    metavar="FILE",
    type=OutputFile(),
    help="Write one self-contained HTML report (charts, scenario matrix).",
)
@click.option(
    "--markdown",
    "markdown_path",
    metavar="FILE",
    type=OutputFile(),
    help="Write the table and the scenario matrix as Markdown.",
)
def command(results: tuple[str, ...], html_path: str | None, markdown_path: str | None) -> None:
    """Compare results files from `ccbench run --out`: one row per model and backend.

    The best value of each column is highlighted (higher is better for rates and tok/s, lower for
    latencies, spurious tool calls and errors per run). A rate with nothing to measure shows as "—". Names are
    never cut: a table too wide for the terminal is printed with one column per run. Name each file once.
    """
    try:
        runs = [load_results_file(path) for path in results]
    except ResultsError as exc:
        raise click.UsageError(str(exc)) from None
    _refuse_repeats(results)
    console = console_for_output()
    console.print(compare_table(runs))
    for note in comparability_notes(runs):
        console.print(f"warning: {note}", style="yellow", markup=False, highlight=False)
    failing = failing_scenarios_table(runs)
    if failing is None:
        console.print("All scenarios pass in every run.")
    else:
        console.print(failing)
    for run, name in zip(runs, unique_labels(runs), strict=True):
        print_diagnosis(run, name, console)
    if markdown_path:
        write_output(markdown_path, compare_markdown(runs), console)
    if html_path:
        write_output(html_path, render_html(runs), console)


def _refuse_repeats(paths: tuple[str, ...]) -> None:
    """The same file named twice (or through a link, or as ./x and x) is a usage error, not a second row: it adds
    nothing, and in a script it is most often a typo for the other file that was meant (`old.json new.json`)."""
    seen: dict[tuple[int, int], str] = {}
    for path in paths:
        stat = os.stat(path)
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            first = seen[key]
            same = "twice" if first == path else f"twice ({first} and {path} are the same file)"
            raise click.UsageError(f"{path} is given {same}: name each results file once")
        seen[key] = path
