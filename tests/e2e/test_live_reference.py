"""`ccbench live` with the reference backend and the REAL Claude Code CLI: the proxy against the real client.

The reference plays each task's scripted assistant turns; Claude Code really runs the tools. Every task must
succeed (its outcome check passes in the workspace) with zero stream errors and zero non-streaming fallbacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.claude_cli import find_claude

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.argv[0] = 'ccbench'; main()"]
REQUIRED_TASKS = {"edit-file", "write-run-script", "recover-tool-error"}


@pytest.fixture(scope="module")
def live_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if find_claude() is None:
        message = (
            "Claude Code CLI not found (npm install @anthropic-ai/claude-code, or set CCBENCH_CLAUDE_BIN)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI installs it via .ci/steps/claude-code.sh")
        pytest.skip(message)
    out = tmp_path_factory.mktemp("live") / "live.json"
    done = subprocess.run(
        [*CLI, "live", "--out", str(out), "--timeout", "120"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


def test_every_task_succeeds_through_the_proxy(live_results: dict) -> None:
    tasks = {t["id"]: t for t in live_results["tasks"]}
    assert set(tasks) >= REQUIRED_TASKS
    failed = {i: t["check"] for i, t in tasks.items() if not t["success"]}
    assert not failed, failed
    assert live_results["summary"]["task_success"] == 1.0
    assert live_results["summary"]["tasks"] == len(tasks)


def test_no_stream_errors_and_no_fallbacks(live_results: dict) -> None:
    summary = live_results["summary"]
    assert summary["stream_errors"] == 0
    assert summary["fallbacks"] == 0
    assert summary["api_errors"] == 0 and summary["timeouts"] == 0
    for task in live_results["tasks"]:
        assert task["requests"] >= task["turns"] > 0, task  # Claude Code really talked to the proxy


def test_claude_code_saw_the_scripted_work(live_results: dict) -> None:
    """The tool error task really produced a tool error in Claude Code, and the others none."""
    tasks = {t["id"]: t for t in live_results["tasks"]}
    assert tasks["recover-tool-error"]["tool_errors"] >= 1
    assert tasks["edit-file"]["tool_errors"] == 0
    assert tasks["edit-file"]["turns"] == 4 and tasks["edit-file"]["tool_calls"] == 3
    assert live_results["claude_code_version"]
