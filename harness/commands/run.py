"""`ccbench run`: replay scenarios against a backend, score them, write the results file.

Exit 0 when the run completed, whatever the scores; exit 2 (click usage error) for anything the user must
fix first: an unknown preset, suite or scenario, a malformed scenario, a missing cassette, an unreachable
backend (the message names the URL), an output file that cannot be written.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harness.backends import MAX_TIMEOUT, PRESETS, BackendError, resolve_target
from harness.commands.options import (
    FiniteFloatRange,
    OutputFile,
    cannot_write,
    check_output_cap,
    max_output_tokens_option,
)
from harness.diagnosis import diagnose
from harness.progress import replay_progress
from harness.replay import ProgressHook, Replay, RunOptions, plan_jobs, run_scenarios
from harness.report_data import parse_results
from harness.results import build_results, write_results
from harness.run_conditions import interrupted_text
from harness.scenarios import Scenario, ScenarioError, load_scenarios, resolve_turns, select_scenarios
from harness.stop_signals import StopRequest, stop_on_signals


def _fmt(value: object, kind: str = "rate") -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:.0f} ms"
    return f"{value:.1f}"


def summary_table(results: dict) -> Table:
    """The end-of-run table: one row per metric."""
    s = results["summary"]
    table = Table(title="ccbench run", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right", overflow="fold")
    rows = [
        ("backend", f"{results['backend']['preset']} {results['backend']['base_url']}"),
        ("model", results["model"]),
        ("scenarios / turns / errors", f"{s['scenarios']} / {s['turns']} / {s['errors']}"),
        ("schema validity", _fmt(s["schema_validity"])),
        ("tool-call success", _fmt(s["tool_call_success"])),
        ("spurious tool calls", _fmt(s.get("spurious_tool_calls"))),
        ("count_tokens validity", _fmt(s["count_tokens_validity"])),
        ("count_tokens error", _fmt(s.get("count_tokens_error"))),
        ("TTFT p50 / p95", f"{_fmt(s['ttft_ms']['p50'], 'ms')} / {_fmt(s['ttft_ms']['p95'], 'ms')}"),
        ("latency p50 / p95", f"{_fmt(s['latency_ms']['p50'], 'ms')} / {_fmt(s['latency_ms']['p95'], 'ms')}"),
        ("output tokens/s", _fmt(s["output_tokens_per_s"], "n")),
        ("scenario pass rate", _fmt(s.get("scenario_pass_rate"))),
        (f"pass^{s.get('repeats', 1)}", _fmt(s.get("pass_hat_k"))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    failures = {k: v for k, v in (s.get("failure_classes") or {}).items() if v}
    if failures:
        table.add_row("failures", ", ".join(f"{k} {v}" for k, v in failures.items()))
    return table


def _report_module(html: Path | None, junit: Path | None):
    """harness.report, checked before the run so a missing module does not waste one."""
    if not html and not junit:
        return None
    try:
        return importlib.import_module("harness.report")
    except ImportError as exc:
        raise click.UsageError(f"--html/--junit need harness.report, which cannot be loaded: {exc}") from exc


def _write(write: Callable[[dict, Path], object], results: dict, path: Path) -> None:
    """Write one output of the run (--out, --html, --junit alike: missing folders are made)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(results, path)
    except OSError as exc:
        raise cannot_write(path, exc) from None


@click.command(name="run")
@click.option(
    "--backend",
    "preset",
    default="reference",
    show_default=True,
    type=click.Choice(list(PRESETS)),
    help="Backend preset.",
)
@click.option(
    "--base-url", help="Backend URL: OpenAI base ending in /v1, or the root for --backend anthropic."
)
@click.option("--model", help="Backend model name (default: the first one the backend lists).")
@click.option("--suite", "suites", multiple=True, help="Run this suite (repeatable; default: all).")
@click.option("--scenario", "scenario_ids", multiple=True, help="Run this scenario id (repeatable).")
@click.option(
    "--concurrency",
    default=None,
    type=click.IntRange(1, 256),
    help="Requests in flight at once [default: the backend's parallel slots when it reports them "
    "(llama.cpp), else 4].",
)
@click.option(
    "--repeat",
    "repeats",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Run everything K times (pass^k, per-repeat spread).",
)
@click.option(
    "--out",
    type=OutputFile(),
    default=Path("results.json"),
    show_default=True,
    help="Results file (JSON).",
)
@click.option("--html", type=OutputFile(), help="Also write an HTML report.")
@click.option("--junit", type=OutputFile(), help="Also write JUnit XML.")
@click.option(
    "--api-key", envvar="CCBENCH_BACKEND_API_KEY", help="Key for the backend (env CCBENCH_BACKEND_API_KEY)."
)
@click.option(
    "--timeout",
    default=600.0,
    show_default=True,
    type=FiniteFloatRange(min=0.1, max=MAX_TIMEOUT),
    help="Seconds allowed per request.",
)
@max_output_tokens_option
@click.option(
    "--scenarios",
    "scenarios_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Scenario folder (default: ./scenarios, else the one shipped with ccbench).",
)
def command(
    preset: str,
    base_url: str | None,
    model: str | None,
    suites: tuple[str, ...],
    scenario_ids: tuple[str, ...],
    concurrency: int | None,
    repeats: int,
    out: Path,
    html: Path | None,
    junit: Path | None,
    api_key: str | None,
    timeout: float,
    max_output_tokens: int | None,
    scenarios_dir: Path | None,
) -> None:
    """Replay scenarios against a backend and score schema validity, tool calls and latency.

    Ctrl-C (or SIGTERM) stops it cleanly: the scenarios that finished are written, marked as a partial run."""
    console = Console(stderr=True, markup=False)  # model names, URLs and paths are text, never markup
    try:
        target = resolve_target(preset, base_url, model)
        chosen = select_scenarios(load_scenarios(scenarios_dir), list(suites), list(scenario_ids))
        chosen = [s for s in map(resolve_turns, chosen) if s.turns]
    except (BackendError, ScenarioError) as exc:
        raise click.UsageError(str(exc)) from exc
    if not chosen:
        raise click.UsageError("no scenarios selected (the chosen suites have no turns)")
    report = _report_module(html, junit)
    check_output_cap(max_output_tokens, target.preset.format)
    options = RunOptions(
        target=target,
        api_key=api_key,
        concurrency=concurrency,
        repeats=repeats,
        timeout=timeout,
        max_output_tokens=max_output_tokens,
    )
    with replay_progress(console, len(plan_jobs(chosen, repeats))) as progress:
        try:
            replay, stop = asyncio.run(_replay(chosen, options, lambda job: progress.advance(job.failed)))
        except BackendError as exc:
            raise click.UsageError(str(exc)) from exc
    stopped = interrupted_text(replay.finished, replay.planned)
    if replay.interrupted and not replay.scenarios:
        console.print(
            f"{stopped}, before any scenario finished: no results written",
            highlight=False,
            soft_wrap=True,
        )
        raise click.exceptions.Exit(stop.exit_code)
    resolved = replay.target
    conditions = options.conditions()
    if replay.interrupted:
        conditions["interrupted"] = {"finished": replay.finished, "planned": replay.planned}
    base = "embedded" if resolved.preset.name == "reference" else resolved.base_url
    results = build_results(
        resolved.preset.name, base, resolved.model or "", replay.summary, replay.scenarios, run=conditions
    )
    _write(write_results, results, out)
    console.print(summary_table(results))
    for line in diagnose(parse_results(results, str(out))):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"results: {out}", highlight=False, soft_wrap=True)
    if report is not None and html:
        _write(report.write_html, results, html)
        console.print(f"HTML report: {html}", highlight=False, soft_wrap=True)
    if report is not None and junit:
        _write(report.write_junit_run, results, junit)
        console.print(f"JUnit XML: {junit}", highlight=False, soft_wrap=True)
    if replay.interrupted:
        console.print(
            f"{stopped}: the results hold {_kept(replay, len(chosen), repeats)} "
            "(compare reads them; gate refuses a partial run)",
            highlight=False,
            soft_wrap=True,
        )
        raise click.exceptions.Exit(stop.exit_code)


def _kept(replay: Replay, scenarios: int, repeats: int) -> str:
    """What an interrupted run's results hold (see harness.replay.finished_part)."""
    kept, whole = len(replay.scenarios), replay.summary.get("repeats", 1)
    if repeats == 1:
        return f"the {kept} scenarios that finished"
    if kept == scenarios:
        return f"all {kept} scenarios in the {whole} of {repeats} repeats that finished"
    return f"the {kept} scenarios that finished their first repeat (of {repeats})"


async def _replay(
    chosen: list[Scenario], options: RunOptions, tick: ProgressHook
) -> tuple[Replay, StopRequest]:
    """The replay, stopped cleanly by the first Ctrl-C / SIGTERM (a second one quits at once)."""
    async with stop_on_signals() as stop:
        return await run_scenarios(chosen, options, tick, stop=stop.event), stop
