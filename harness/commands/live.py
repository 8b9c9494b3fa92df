"""`ccbench live`: run the real Claude Code CLI through the proxy on task scenarios and report task success."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import click

from harness.backends import MAX_TIMEOUT, PRESETS, BackendError, Target, discover_model, resolve_target
from harness.claude_cli import CLAUDE_INSTALL_HINT, CLAUDE_OPTION_HELP, find_claude
from harness.commands.options import (
    FiniteFloatRange,
    OutputFile,
    check_output_cap,
    max_output_tokens_option,
    write_output_file,
)
from harness.live import LiveTarget, TaskResult, live_report, run_task
from harness.live_tasks import LiveError, LiveTask, load_live_tasks
from harness.run_conditions import interrupted_text
from harness.stop_signals import StopRequest, stop_on_signals, unless_stopped
from proxy.translate.textcalls import SERVER_HINT


def resolve_live_target(
    backend: str, base_url: str | None, model: str | None, max_output_tokens: int | None = None
) -> LiveTarget:
    """Reuse `ccbench run`'s presets (default URLs, thinking style) for the proxy's upstream."""
    if backend == "llamacpp" and not base_url:  # started for the run
        return LiveTarget("llamacpp", None, model, "openai", "chat_template_kwargs", max_output_tokens)
    try:
        target = resolve_target(backend, base_url, model)
    except BackendError as exc:
        raise click.UsageError(str(exc)) from None
    check_output_cap(max_output_tokens, target.preset.format)
    if backend == "reference":
        return LiveTarget(model=model, max_output_tokens=max_output_tokens)
    preset = target.preset
    return LiveTarget(backend, target.base_url, model, preset.format, preset.thinking, max_output_tokens)


@contextlib.asynccontextmanager
async def started_backend(target: LiveTarget) -> AsyncIterator[LiveTarget]:
    """`--backend llamacpp` without --base-url: start the packaged llama-server for the run."""
    if target.preset != "llamacpp" or target.base_url:
        yield target
        return
    from harness.llamacpp import running_llama_server

    click.echo("starting llama-server (SmolLM2-135M) for the run…", err=True)
    async with running_llama_server() as server:
        yield dataclasses.replace(target, base_url=server.base_url)


async def probed(target: LiveTarget) -> LiveTarget:
    """Probe an OpenAI-format backend before Claude Code starts (fail fast, naming the URL) and name the model the
    proxy will use (the first one the backend lists unless --model), so the report says which model ran."""
    if target.preset == "reference" or target.upstream_format != "openai":
        return target
    found = await discover_model(Target(PRESETS[target.preset], str(target.base_url), target.model))
    return dataclasses.replace(target, model=found.model)


async def run_all(
    tasks: list[LiveTask], claude: Path, target: LiveTarget, timeout: float, stop: asyncio.Event | None = None
) -> tuple[LiveTarget, list[TaskResult]]:
    """Every task in turn; when `stop` is set, the task running is cancelled (Claude Code killed) and the
    finished ones are returned."""
    results: list[TaskResult] = []
    async with started_backend(target) as started:
        live_target = await probed(started)
        for task in tasks:
            result = await unless_stopped(run_task(task, claude, live_target, timeout), stop)
            if result is None:
                break
            mark = "ok  " if result.success else "FAIL"
            click.echo(
                f"{mark} {task.id:24} turns={result.turns} tool_errors={result.tool_errors} "
                f"stream_errors={result.stream_errors} fallbacks={result.fallbacks} {result.wall_s:.1f}s  {result.check}"
            )
            results.append(result)
    return live_target, results


def claude_version(claude: Path) -> str | None:
    try:
        done = subprocess.run([str(claude), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().split(" ")[0] or None


@click.command(name="live")
@click.option(
    "--backend",
    type=click.Choice(list(PRESETS)),
    default="reference",
    show_default=True,
    help="reference plays each task's scripted turns; llamacpp without --base-url starts llama-server.",
)
@click.option(
    "--base-url",
    "--upstream",
    "base_url",
    default=None,
    help="OpenAI base URL (…/v1) or, for anthropic, the root URL (--upstream: the same, as the proxy names it).",
)
@click.option("--model", default=None, help="Backend model name (default: what the backend lists first).")
@click.option("--scenario", "scenario_ids", multiple=True, help="Task id to run (repeatable; default: all).")
@click.option(
    "--tasks-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of live task YAML files (default: scenarios/live).",
)
@click.option("--out", type=OutputFile(), default=None, help="Write results JSON here.")
@click.option(
    "--claude",
    "claude_path",
    default=None,
    help=CLAUDE_OPTION_HELP,
)
@click.option(
    "--timeout",
    type=FiniteFloatRange(min=1, max=MAX_TIMEOUT),
    default=300.0,
    show_default=True,
    help="Seconds per task before Claude Code is stopped.",
)
@max_output_tokens_option
@click.option(
    "--from-cassette",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fork a recorded session: run its task, replaying the cassette's first --resume-at main turns.",
)
@click.option(
    "--resume-at",
    type=int,
    default=None,
    help="With --from-cassette: main-agent turns to replay before the live backend takes over (0..recorded).",
)
def command(backend: str, base_url: str | None, model: str | None, scenario_ids: tuple[str, ...],
            tasks_dir: Path | None, out: Path | None, claude_path: str | None, timeout: float,
            max_output_tokens: int | None, from_cassette: Path | None, resume_at: int | None) -> None:  # fmt: skip
    """Run the real Claude Code CLI through an in-process proxy on task scenarios; exit 0 whatever the scores."""
    if from_cassette is not None or resume_at is not None:
        run_fork_command(backend, base_url, model, scenario_ids, tasks_dir, out, claude_path, timeout,
                         from_cassette, resume_at, max_output_tokens)  # fmt: skip
        return
    try:
        claude = find_claude(claude_path)
        if claude is None:
            raise LiveError(CLAUDE_INSTALL_HINT)
        tasks = load_live_tasks(tasks_dir, list(scenario_ids))
    except LiveError as exc:
        raise click.UsageError(str(exc)) from None
    target = resolve_live_target(backend, base_url, model, max_output_tokens)

    async def until_stopped() -> tuple[LiveTarget, list[TaskResult], StopRequest]:
        async with stop_on_signals() as stop:
            return *(await run_all(tasks, claude, target, timeout, stop.event)), stop

    try:
        live_target, results, stop = asyncio.run(until_stopped())
    except BackendError as exc:
        raise click.UsageError(str(exc)) from None
    except Exception as exc:  # a backend that cannot start: report, not a traceback
        _report_backend_failure(exc)
        raise
    report = live_report(results, live_target, claude_version(claude), timeout)
    summary = report["summary"]
    success = "—" if summary["task_success"] is None else f"{summary['task_success']:.2f}"
    click.echo(
        f"tasks={summary['tasks']} task_success={success} stream_errors={summary['stream_errors']} "
        f"fallbacks={summary['fallbacks']} tool_errors={summary['tool_errors']} wall={summary['wall_s']:.1f}s"
    )
    _advise_text_tool_calls(summary["text_tool_calls"])
    stopped = len(results) < len(tasks)
    if stopped:
        report["run"]["interrupted"] = {"finished": len(results), "planned": len(tasks)}
    if out is not None:
        write_output_file(out, json.dumps(report, indent=2) + "\n")
    if stopped:
        click.echo(
            f"{interrupted_text(len(results), len(tasks), 'tasks')}: the report holds the finished ones"
        )
        raise click.exceptions.Exit(stop.exit_code)


def run_fork_command(backend: str, base_url: str | None, model: str | None, scenario_ids: tuple[str, ...],
                     tasks_dir: Path | None, out: Path | None, claude_path: str | None, timeout: float,
                     from_cassette: Path | None, resume_at: int | None,
                     max_output_tokens: int | None = None) -> None:  # fmt: skip
    """`--from-cassette FILE --resume-at N`: one forked session (see harness/live_fork.py)."""
    from harness.fork_session import load_fork
    from harness.live_fork import ForkResult, fork_report, run_fork

    if from_cassette is None or resume_at is None:
        raise click.UsageError("--from-cassette FILE and --resume-at N go together")
    if scenario_ids or tasks_dir is not None:
        raise click.UsageError("--from-cassette runs the cassette's task; drop --scenario/--tasks-dir")
    if backend == "anthropic":
        raise click.UsageError("--from-cassette needs an OpenAI-format backend (not --backend anthropic)")
    try:
        session = load_fork(from_cassette, resume_at)
        claude = find_claude(claude_path)
        if claude is None:
            raise LiveError(CLAUDE_INSTALL_HINT)
    except LiveError as exc:
        raise click.UsageError(str(exc)) from None
    target = resolve_live_target(backend, base_url, model, max_output_tokens)

    async def fork() -> tuple[LiveTarget, ForkResult | None, StopRequest]:
        async with stop_on_signals() as stop, started_backend(target) as started:
            live_target = await probed(started)
            work = run_fork(session, from_cassette, resume_at, claude, live_target, timeout)
            return live_target, await unless_stopped(work, stop.event), stop

    try:
        live_target, result, stop = asyncio.run(fork())
    except (LiveError, BackendError) as exc:
        raise click.UsageError(str(exc)) from None
    except Exception as exc:  # a backend that cannot start: report, not a traceback
        _report_backend_failure(exc)
        raise
    if result is None:  # Ctrl-C / SIGTERM: Claude Code and its tools were killed; a half session has no score
        where = f" ({out} not written)" if out is not None else ""
        task_id = f"{session.name}@{resume_at}"
        click.echo(f"interrupted: the forked session {task_id} did not finish, nothing to report{where}")
        raise click.exceptions.Exit(stop.exit_code)
    mark = "ok  " if result.success else "FAIL"
    click.echo(
        f"{mark} {result.id:24} turns={result.turns} replayed={result.replayed_turns} live={result.live_turns} "
        f"tool_errors={result.tool_errors} stream_errors={result.stream_errors} fallbacks={result.fallbacks} "
        f"{result.wall_s:.1f}s  {result.check}"
    )
    _advise_text_tool_calls(result.text_tool_calls)
    report = fork_report(result, live_target, claude_version(claude), timeout)
    if out is not None:
        write_output_file(out, json.dumps(report, indent=2) + "\n")


def _advise_text_tool_calls(count: int) -> None:
    """Claude Code ran nothing because the backend's tool parser is off: say so, with the flag."""
    if count:
        click.echo(f"{count} answer(s) held a tool call the backend left as text: {SERVER_HINT}")


def _report_backend_failure(exc: Exception) -> None:
    """A local backend that could not be set up or started becomes a clean CLI error (else: re-raise)."""
    from harness.llamacpp import BackendSetupError, BackendStartError

    if isinstance(exc, BackendSetupError):
        raise click.UsageError(str(exc)) from None
    if isinstance(exc, BackendStartError):
        raise click.ClickException(exc.report()) from None
