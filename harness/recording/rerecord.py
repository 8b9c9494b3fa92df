"""Re-record the whole corpus: `python -m harness.recording.rerecord` (or `make cassettes`).

Each `sessions/<name>.yaml` is played to the real Claude Code CLI and recorded into `cassettes/<name>.yaml`.
Exits 1 when any session fails its checks (CLI exit code, result, number of main turns, key leak).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from harness.claude_cli import CLAUDE_OPTION_HELP
from harness.recording.runner import RecordingError, SessionResult, find_claude, record_session
from harness.scripted_upstream import ScriptError, load_script

SESSIONS_DIR = Path(__file__).parent / "sessions"


def session_files(only: tuple[str, ...]) -> list[Path]:
    files = sorted(SESSIONS_DIR.glob("*.yaml"))
    if only:
        unknown = set(only) - {f.stem for f in files}
        if unknown:
            raise click.UsageError(f"unknown session(s): {', '.join(sorted(unknown))}")
        files = [f for f in files if f.stem in only]
    return files


def describe(result: SessionResult) -> str:
    status = "ok" if result.ok else "FAILED: " + "; ".join(result.problems)
    return (
        f"{result.name:16} {result.interactions:3} interactions, "
        f"{result.main_turns}/{result.expected_main_turns} main turns  {status}"
    )


async def rerecord(files: list[Path], out_dir: Path, claude_bin: str, normalize: bool) -> list[SessionResult]:
    results = []
    for file in files:
        script = load_script(file)
        result = await record_session(
            script, out_dir / f"{file.stem}.yaml", claude_bin=claude_bin, normalize=normalize
        )
        click.echo(describe(result))
        results.append(result)
    return results


@click.command()
@click.option("--only", multiple=True, help="Record only this session (repeatable), e.g. --only read_edit.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cassettes"),
    show_default=True,
)
@click.option(
    "--claude",
    "claude_bin",
    default=None,
    help=CLAUDE_OPTION_HELP,
)
@click.option("--normalize/--no-normalize", default=True, show_default=True, help="Replace volatile values.")
def main(only: tuple[str, ...], out_dir: Path, claude_bin: str | None, normalize: bool) -> None:
    """Re-record every session script in harness/recording/sessions into cassettes/."""
    try:
        binary = find_claude(claude_bin)
        files = session_files(only)
        results = asyncio.run(rerecord(files, out_dir, binary, normalize))
    except (RecordingError, ScriptError) as exc:
        raise click.ClickException(str(exc)) from exc
    failed = [r for r in results if not r.ok]
    click.echo(f"{len(results) - len(failed)}/{len(results)} sessions recorded")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
