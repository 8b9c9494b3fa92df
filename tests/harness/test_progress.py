"""Replay progress: plain lines off a terminal (CI logs must not stay silent), the bar on one."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from harness.progress import BarProgress, PlainProgress, replay_progress
from tests.harness.test_run_cli import REQUEST, run, scenario_dir


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain(total: int, every: float = 30.0) -> tuple[PlainProgress, io.StringIO, Clock]:
    out = io.StringIO()
    clock = Clock()
    return PlainProgress(Console(file=out, width=200), total, every=every, clock=clock), out, clock


def test_plain_lines_at_start_every_interval_and_end() -> None:
    progress, out, clock = plain(5)
    with progress:
        progress.advance(failed=False)  # within the interval: no line
        clock.now += 31
        progress.advance(failed=True)
        clock.now += 5
        progress.advance(failed=False)  # 5 s after the last line: none
        clock.now += 60
        progress.advance(failed=True)
        progress.advance(failed=False)  # the last one always prints
    assert out.getvalue().splitlines() == [
        "replaying 5 requests…",
        "replayed 2/5 requests, 1 error, 31s (~46s left)",
        "replayed 4/5 requests, 2 errors, 1m36s (~24s left)",
        "replayed 5/5 requests, 2 errors, 1m36s",
    ]


def test_plain_says_where_an_interrupted_run_stopped() -> None:
    progress, out, clock = plain(10)
    with pytest.raises(KeyboardInterrupt), progress:
        progress.advance(failed=False)
        clock.now += 3
        raise KeyboardInterrupt
    assert out.getvalue().splitlines()[-1] == "replayed 1/10 requests, 0 errors, 3s (~27s left)"


def test_terminal_gets_the_bar_with_errors_and_logs_get_lines() -> None:
    assert isinstance(replay_progress(Console(file=io.StringIO(), force_terminal=True), 3), BarProgress)
    assert isinstance(replay_progress(Console(file=io.StringIO(), force_terminal=False), 3), PlainProgress)
    out = io.StringIO()
    with BarProgress(Console(file=out, force_terminal=True, width=120), 3) as bar:
        bar.advance(failed=True)
        bar.advance(failed=True)
        bar._progress.refresh()
    assert "2 errors" in out.getvalue()


def test_a_run_off_a_terminal_reports_progress(tmp_path) -> None:
    """CliRunner's output is not a terminal, like CI's: the run says how far it is instead of nothing."""
    folder = scenario_dir(tmp_path, [{"id": "x", "suite": "s", "request": REQUEST, "reference": "hello"}])
    result = run("--scenarios", str(folder), "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    start = re.search(r"^replaying (\d+) requests…$", result.output, re.MULTILINE)
    assert start, result.output
    total = start.group(1)
    assert f"replayed {total}/{total} requests, 0 errors, " in result.output
