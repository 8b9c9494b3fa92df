"""`ccbench live` and `ccbench record --script` find the Claude Code CLI the same way, and say so alike."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.claude_cli import CLAUDE_OPTION_HELP, find_claude
from harness.cli import main
from harness.recording import runner


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_claude_bin_is_read_by_the_shared_lookup(tmp_path: Path) -> None:
    """`live` used to read only $CCBENCH_CLAUDE_BIN, while `record` also read $CLAUDE_BIN."""
    binary = executable(tmp_path / "claude")
    assert find_claude(None, {"CLAUDE_BIN": str(binary), "PATH": "", "HOME": str(tmp_path)}) == binary


def test_ccbench_claude_bin_wins_over_claude_bin(tmp_path: Path) -> None:
    ours, generic = executable(tmp_path / "ours" / "claude"), executable(tmp_path / "generic" / "claude")
    env = {"CCBENCH_CLAUDE_BIN": str(ours), "CLAUDE_BIN": str(generic), "PATH": "", "HOME": str(tmp_path)}
    assert find_claude(None, env) == ours
    assert find_claude(str(generic), env) == generic  # --claude wins over both


def test_record_uses_the_same_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours, generic = executable(tmp_path / "ours" / "claude"), executable(tmp_path / "generic" / "claude")
    monkeypatch.setenv("CCBENCH_CLAUDE_BIN", str(ours))
    monkeypatch.setenv("CLAUDE_BIN", str(generic))
    assert runner.find_claude() == str(ours) == str(find_claude())


def test_live_and_record_help_say_the_same_thing() -> None:
    """The help of both commands names the real order (record's said `$CLAUDE_BIN, PATH`)."""
    flat = " ".join(CLAUDE_OPTION_HELP.split())
    for command in ("live", "record"):
        result = CliRunner().invoke(main, [command, "--help"], terminal_width=400)
        assert result.exit_code == 0, result.output
        assert flat in " ".join(result.output.split()), (command, result.output)
    assert flat.index("$CCBENCH_CLAUDE_BIN") < flat.index("$CLAUDE_BIN") < flat.index("PATH")


def test_the_docs_give_the_same_order() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "readme"
    for name in ("recording.md", "realparts.md"):
        text = " ".join((docs / name).read_text().split())
        assert "`$CCBENCH_CLAUDE_BIN`, then `$CLAUDE_BIN`, then `claude` on `PATH`" in text, name
