"""`ccbench record`: a recording proxy for Claude Code sessions (or a whole scripted session with --script)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from harness.claude_cli import CLAUDE_OPTION_HELP


class RecordError(click.ClickException):
    """Bad input or environment: a clear message and exit code 2."""

    exit_code = 2


def _check_upstream(url: str) -> str:
    from proxy.urls import anthropic_root, http_url_problem

    problem = http_url_problem(url, "--upstream")
    if problem:
        raise RecordError(f"{problem} (an http(s) root URL such as http://127.0.0.1:8082)")
    if anthropic_root(url):
        raise RecordError(
            f"--upstream is an Anthropic root URL (as ANTHROPIC_BASE_URL takes it), without /v1: {url}"
        )
    return url.rstrip("/")


def _check_cassette_writable(cassette: Path) -> None:
    """Fail before anything starts, not after a session's worth of exchanges went unrecorded."""
    from harness.cassette import check_writable

    try:
        check_writable(cassette)
    except OSError as exc:
        raise RecordError(f"cannot write the cassette {cassette}: {exc.strerror or exc}") from exc


def _record_script(script_path: Path, cassette: Path, normalize: bool, claude_bin: str | None) -> None:
    from harness.recording.rerecord import describe
    from harness.recording.runner import RecordingError, find_claude, record_session
    from harness.scripted_upstream import ScriptError, load_script

    try:
        script = load_script(script_path)
        binary = find_claude(claude_bin)
    except (ScriptError, RecordingError) as exc:
        raise RecordError(str(exc)) from exc
    result = asyncio.run(record_session(script, cassette, claude_bin=binary, normalize=normalize))
    click.echo(describe(result))
    if not result.ok:
        raise SystemExit(1)


def _record_proxy(
    upstream: str, cassette: Path, host: str, port: int, normalize: bool, workspace: Path, description: str
) -> None:
    from harness.recorder import CassetteRecorder, serve_recorder
    from harness.redact import HOME_ALIAS, WORKSPACE_ALIAS, Normalizer

    paths = {str(workspace.resolve()): WORKSPACE_ALIAS}
    home = os.environ.get("HOME")
    if home and home != "/":
        paths[os.path.realpath(home)] = HOME_ALIAS
    normalizer = Normalizer(paths=paths) if normalize else None
    meta = {"upstream": upstream, "description": description}
    recorder = CassetteRecorder(cassette, meta=meta, normalizer=normalizer)
    try:
        asyncio.run(
            serve_recorder(
                recorder,
                upstream,
                host,
                port,
                announce=lambda line: click.echo(line, err=False),
                warn=lambda line: click.echo(line, err=True),
            )
        )
    except OSError as exc:
        raise RecordError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@click.command(name="record")
@click.option("--upstream", help="Anthropic-format root URL that answers (e.g. http://127.0.0.1:8082).")
@click.option(
    "--cassette",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Cassette file to write.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8083, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port."
)
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="Replace volatile values (session/tool/message ids, temp paths, dates) by stable placeholders.",
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project directory Claude Code runs in; shown as /workspace/project when normalising.",
)
@click.option("--description", default="", help="What the session does (stored in the cassette).")
@click.option(
    "--script",
    "script_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Record a whole scripted session: scripted upstream + the real Claude Code CLI (no --upstream).",
)
@click.option(
    "--claude",
    "claude_bin",
    default=None,
    help="For --script: " + CLAUDE_OPTION_HELP,
)
def command(
    upstream: str | None,
    cassette: Path,
    host: str,
    port: int,
    normalize: bool,
    workspace: Path,
    description: str,
    script_path: Path | None,
    claude_bin: str | None,
) -> None:
    """Record Claude Code sessions into a vcrpy-format cassette.

    Start it, then run Claude Code with ANTHROPIC_BASE_URL set to the printed address. Every exchange goes
    through to --upstream unchanged and is appended to --cassette (secrets redacted) as soon as it is done.
    Stop with Ctrl-C.
    """
    if script_path is not None:
        if upstream:
            raise RecordError("--script runs its own scripted upstream; drop --upstream")
        _check_cassette_writable(cassette)
        _record_script(script_path, cassette, normalize, claude_bin)
        return
    if not upstream:
        raise RecordError("--upstream is required (or --script FILE to record a scripted session)")
    upstream = _check_upstream(upstream)
    _check_cassette_writable(cassette)
    _record_proxy(upstream, cassette, host, port, normalize, workspace, description)
