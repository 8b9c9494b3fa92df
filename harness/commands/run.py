"""`ccbench run`: replay scenarios against a backend, score them, write the results file.

Exit 0 when the run completed, whatever the scores; exit 2 (click usage error) for anything the user must
fix first: an unknown preset, suite or scenario, a malformed scenario, a missing cassette, an unreachable
backend or something else answering at its URL (the message names the URL), an output file that cannot be
written. `--list` prints the scenario ids and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console

from harness.backends import MAX_TIMEOUT, PRESETS, BackendError, Target, resolve_target
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
from harness.run_table import summary_notes, summary_table
from harness.scenario_help import SCENARIO_FILE_SHAPE, listing_lines
from harness.scenarios import (
    Scenario,
    ScenarioError,
    default_scenarios_dir,
    load_scenarios,
    resolve_turns,
    select_scenarios,
)
from harness.stop_signals import StopRequest, stop_on_signals


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
    "--base-url",
    "--upstream",
    "base_url",
    help="Backend URL: OpenAI base ending in /v1, or the root for --backend anthropic (--upstream: the same, "
    "as `ccbench proxy` names it).",
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
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="List the scenarios (suite, id, description; only --suite's when given) and exit: the ids --scenario takes.",
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
    list_only: bool,
) -> None:
    """Replay scenarios against a backend and score schema validity, tool calls and latency.

    Ctrl-C (or SIGTERM) stops it cleanly: the scenarios that finished are written, marked as a partial run."""
    console = Console(stderr=True, markup=False)  # model names, URLs and paths are text, never markup
    if list_only:
        _list_scenarios(scenarios_dir, suites)
        return
    try:
        target = resolve_target(preset, base_url, model)
        chosen = _choose(scenarios_dir or default_scenarios_dir(), list(suites), list(scenario_ids))
    except (BackendError, ScenarioError) as exc:
        raise click.UsageError(str(exc)) from exc
    _check_api_key(click.get_current_context(), target)
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
    progress = replay_progress(console, len(plan_jobs(chosen, repeats)))
    with contextlib.ExitStack() as shown:  # progress appears once the backend answered, not before the probe
        try:
            replay, stop = asyncio.run(
                _replay(
                    chosen,
                    options,
                    lambda job: progress.advance(job.failed),
                    lambda: shown.enter_context(progress),
                )
            )
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
    for line in summary_notes(results):
        console.print(line, highlight=False, soft_wrap=True)
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


def _choose(folder: Path, suites: list[str], ids: list[str]) -> list[Scenario]:
    """The scenarios to replay, with their turns; a selection that gives nothing says why."""
    scenarios = load_scenarios(folder)
    if not scenarios:
        raise ScenarioError(f"the scenario files in {folder} hold no scenarios: {SCENARIO_FILE_SHAPE}")
    chosen = [s for s in map(resolve_turns, select_scenarios(scenarios, suites, ids)) if s.turns]
    if not chosen:
        picked = "; ".join(
            f"{kind} {', '.join(names)}" for kind, names in (("suite", suites), ("scenario", ids)) if names
        )
        raise ScenarioError(f"nothing to replay: no turns in {picked or 'any scenario'}")
    return chosen


def _list_scenarios(folder: Path | None, suites: tuple[str, ...]) -> None:
    """`--list`: what --scenario and --suite can name, on stdout."""
    try:
        chosen = select_scenarios(load_scenarios(folder), list(suites), [])
    except ScenarioError as exc:
        raise click.UsageError(str(exc)) from exc
    for line in listing_lines(chosen):
        click.echo(line)


def _check_api_key(ctx: click.Context, target: Target) -> None:
    """The embedded reference backend takes no key: refused like --base-url when given as an option; the
    environment's CCBENCH_BACKEND_API_KEY (meant for other backends) is left unused."""
    given = ctx.get_parameter_source("api_key") == click.core.ParameterSource.COMMANDLINE
    if given and target.preset.name == "reference":
        raise click.UsageError("--api-key makes no sense with the reference backend (it is embedded)")


def _kept(replay: Replay, scenarios: int, repeats: int) -> str:
    """What an interrupted run's results hold (see harness.replay.finished_part)."""
    kept, whole = len(replay.scenarios), replay.summary.get("repeats", 1)
    if repeats == 1:
        return f"the {kept} scenarios that finished"
    if kept == scenarios:
        return f"all {kept} scenarios in the {whole} of {repeats} repeats that finished"
    return f"the {kept} scenarios that finished their first repeat (of {repeats})"


async def _replay(
    chosen: list[Scenario], options: RunOptions, tick: ProgressHook, on_start: Callable[[], object]
) -> tuple[Replay, StopRequest]:
    """The replay, stopped cleanly by the first Ctrl-C / SIGTERM (a second one quits at once)."""
    async with stop_on_signals() as stop:
        return await run_scenarios(chosen, options, tick, stop=stop.event, on_start=on_start), stop
