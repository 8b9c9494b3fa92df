"""`ccbench gate`: exit 1 when a candidate's results regress against a baseline, 0 when they hold,
2 on a usage error (missing or invalid file, wrong schema_version, no scenarios in common)."""

from __future__ import annotations

import click

from harness.commands.options import FiniteFloatRange, OutputFile
from harness.gate import GateConfigError, GateThresholds, build_thresholds, evaluate_gate, load_gate_config
from harness.junit import gate_junit, junit_text
from harness.report import console_for_output, load_results_file, print_gate, write_output
from harness.report_data import ResultsError
from harness.report_html import render_gate_html
from harness.report_markdown import gate_markdown

DEFAULTS = GateThresholds()
THRESHOLD_OPTIONS: tuple[tuple[str, click.ParamType, str], ...] = (
    ("min_schema_validity", FiniteFloatRange(0, 1), "Candidate schema validity must be at least this."),
    (
        "max_tool_drop",
        FiniteFloatRange(min=0),
        "Tool-call success may drop at most this fraction (0.05 = 5 points).",
    ),
    (
        "max_spurious_growth",
        FiniteFloatRange(min=0),
        "Spurious tool calls (on text turns) may grow at most this fraction (0.05 = 5 points).",
    ),
    (
        "max_count_tokens_drop",
        FiniteFloatRange(min=0),
        "count_tokens validity may drop at most this fraction (0 = not at all).",
    ),
    (
        "max_latency_growth",
        FiniteFloatRange(min=0),
        "p95 TTFT and p95 latency may grow at most this fraction.",
    ),
    ("latency_floor_ms", FiniteFloatRange(min=0), "Latency growth of at most this many ms never fails."),
    ("max_error_growth", FiniteFloatRange(min=0), "Errors per run may grow at most this much."),
    (
        "noise_sigma",
        FiniteFloatRange(min=0),
        "With --repeat results: noise band in standard errors; 0 disables.",
    ),
)


def threshold_options(function):
    """One flag per threshold; defaults come from GateThresholds (flags default to None so gate.yaml applies)."""
    for name, param_type, help_text in reversed(THRESHOLD_OPTIONS):
        default = getattr(DEFAULTS, name)
        option = click.option(
            "--" + name.replace("_", "-"),
            name,
            type=param_type,
            metavar="X",
            help=f"{help_text}  [default: {default:g}]",
        )
        function = option(function)
    return function


@click.command(name="gate")
@click.option("--baseline", required=True, metavar="RESULTS.json", help="Results file of the current model.")
@click.option(
    "--candidate", required=True, metavar="RESULTS.json", help="Results file of the model to judge."
)
@click.option(
    "--config", "config_path", metavar="FILE", help="gate.yaml with thresholds (flags win over it)."
)
@threshold_options
@click.option(
    "--allow-scenario-regression",
    "allow",
    multiple=True,
    metavar="ID",
    help="A scenario allowed to go from pass to fail (repeatable).",
)
@click.option(
    "--allow-missing-scenarios",
    "allow_missing",
    is_flag=True,
    default=None,
    help="Skip baseline scenarios the candidate did not run, instead of failing on each.",
)
@click.option(
    "--junit",
    "junit_path",
    metavar="FILE",
    type=OutputFile(),
    help="Write JUnit XML: one testcase per threshold and per scenario.",
)
@click.option(
    "--markdown",
    "markdown_path",
    metavar="FILE",
    type=OutputFile(),
    help="Write the gate report as Markdown (PR comment).",
)
@click.option(
    "--html",
    "html_path",
    metavar="FILE",
    type=OutputFile(),
    help="Write the HTML comparison of baseline and candidate.",
)
@click.pass_context
def command(
    ctx: click.Context,
    baseline: str,
    candidate: str,
    config_path: str | None,
    allow: tuple[str, ...],
    allow_missing: bool | None,
    junit_path: str | None,
    markdown_path: str | None,
    html_path: str | None,
    **flags: float | None,
) -> None:
    """Fail (exit 1) when CANDIDATE regresses against BASELINE.

    Checks: schema validity stays at the minimum, tool-call success drops at most --max-tool-drop,
    no scenario that passed in the baseline fails, every baseline scenario was run by the candidate, p95 TTFT and latency grow at most --max-latency-growth
    (growth under --latency-floor-ms is ignored), errors grow at most --max-error-growth. With --repeat
    results a breach inside the repeat-to-repeat noise band is reported as "within noise" and passes.
    """
    try:
        config = load_gate_config(config_path) if config_path else {}
        thresholds = build_thresholds(
            config, {**flags, "allow_regressions": allow, "allow_missing": allow_missing}
        )
        result = evaluate_gate(load_results_file(baseline), load_results_file(candidate), thresholds)
    except (ResultsError, GateConfigError) as exc:
        raise click.UsageError(str(exc)) from None
    console = console_for_output()
    print_gate(result, console)
    if junit_path:
        write_output(junit_path, junit_text(gate_junit(result)), console)
    if markdown_path:
        write_output(markdown_path, gate_markdown(result), console)
    if html_path:
        write_output(html_path, render_gate_html(result), console)
    ctx.exit(0 if result.passed else 1)
