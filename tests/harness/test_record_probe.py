"""`ccbench record` checks its upstream at start: a typo is a clear warning at once, not a 529 on the first
request; the recorder still starts (the backend may come up later)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from harness.recorder import probe_upstream
from harness.reference import serve_on_loopback
from tests.harness.test_run_cli import closed_port


async def test_any_http_answer_counts_as_up() -> None:
    """A 404 (or a 401 without a key) still means a server is there: the recorder passes everything through."""
    async with serve_on_loopback(web.Application()) as root:
        assert await probe_upstream(root) is None


async def test_nothing_listening_is_a_warning_naming_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    warning = await probe_upstream(url)
    assert warning is not None
    assert warning.startswith(f"warning: nothing answers at --upstream {url} (")
    assert "HTTP 529" in warning and "check the URL" in warning


def test_the_recorder_warns_at_start_and_keeps_serving(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    process = subprocess.Popen(
        [sys.executable, "-c", "from harness.cli import main; main()", "record", "--upstream", url,
         "--cassette", str(tmp_path / "c.yaml"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        ready, _, _ = select.select([process.stderr], [], [], 30)  # no hang when nothing is said
        warning = process.stderr.readline() if ready else ""  # before any request: the probe runs at start
        assert process.poll() is None  # not refused: still serving
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    assert warning.startswith(f"warning: nothing answers at --upstream {url}"), warning
    assert "export ANTHROPIC_BASE_URL=" in out
    assert process.returncode == 0
