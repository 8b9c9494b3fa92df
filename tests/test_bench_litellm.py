"""Where the benchmark finds LiteLLM, and what happens when it is asked for but cannot run.

LiteLLM is measured by default whenever it is installed (the `bench` extra puts its `litellm` script beside
the interpreter, which need not be on PATH); `--litellm` makes it required, so a missing or broken LiteLLM
stops the run with exit code 2 instead of quietly leaving the comparison out."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench import servers

REPO_ROOT = Path(__file__).resolve().parent.parent
SMALL_RUN = ["--concurrency", "1", "--requests", "3", "--repeat", "1", "--soak", "0", "--scale-workers", "0"]


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_bench_extra_installs_litellms_proxy() -> None:
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "litellm[proxy]" in extras["bench"]


def test_litellm_is_found_beside_the_interpreter_when_its_environment_is_not_activated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path / "venv" / "bin" / "litellm", "exit 0")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.delenv("CCBENCH_LITELLM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert servers.litellm_command() == [str(script)]

    monkeypatch.setenv("CCBENCH_LITELLM", "/opt/litellm/bin/litellm")  # an explicit choice wins
    assert servers.litellm_command() == ["/opt/litellm/bin/litellm"]

    monkeypatch.delenv("CCBENCH_LITELLM")
    script.chmod(0o644)  # not executable: not a usable install
    assert servers.litellm_command() is None
    on_path = _script(tmp_path / "empty" / "litellm", "exit 0")
    assert servers.litellm_command() == [str(on_path)]


def _run_bench(tmp_path: Path, litellm: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/run_bench.py", *SMALL_RUN, *flags, "--out", str(tmp_path / "r.json")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "CCBENCH_LITELLM": str(litellm)},
    )


def test_an_installed_litellm_is_measured_by_default_and_a_broken_one_is_noted_not_fatal(
    tmp_path: Path,
) -> None:
    broken = _script(tmp_path / "litellm", "echo '[/INFO] litellm: cannot import [proxy] extras' >&2; exit 1")
    completed = _run_bench(tmp_path, broken)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "LiteLLM skipped: litellm proxy exited with 1" in completed.stdout
    # the reason, from LiteLLM's own output, verbatim: brackets in a server's log are text, not rich markup
    assert "[/INFO] litellm: cannot import [proxy] extras" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr
    assert (tmp_path / "r.json").exists()

    skipped = _run_bench(tmp_path, broken, "--no-litellm")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "LiteLLM" not in skipped.stdout


def test_litellm_asked_for_by_name_but_unusable_stops_the_run_with_exit_code_2(tmp_path: Path) -> None:
    broken = _script(tmp_path / "litellm", "echo '[/INFO] litellm: cannot import [proxy] extras' >&2; exit 1")
    completed = _run_bench(tmp_path, broken, "--litellm")
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "benchmark could not run: --litellm: litellm proxy exited with 1" in completed.stdout
    assert "[/INFO] litellm: cannot import [proxy] extras" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr
    assert not (tmp_path / "r.json").exists()
