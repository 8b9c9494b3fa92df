"""A wheel (not an editable install) carries the bundled suites: `ccbench run` works from it with no checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_SOURCE = (
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".hypothesis",
    ".ruff_cache",
    "node_modules",
    "*.so",  # the editable install's compiled modules: the wheel compiles its own
)


def test_ccbench_run_from_a_wheel_finds_the_bundled_suites_and_cassettes(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a clean copy: a stale build/ in the checkout would leak into the wheel
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("ccbench-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert "harness/data/scenarios/smoke.yaml" in names
    assert sum(n.startswith("harness/data/cassettes/") and n.endswith(".yaml") for n in names) >= 10

    workdir = tmp_path / "elsewhere"  # no scenarios/ here: only the wheel's copy can be found
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the wheel's code ahead of the checkout's editable install
    out = workdir / "r.json"
    done = subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", "run", "--out", str(out)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["summary"]["schema_validity"] == 1.0 and results["summary"]["tool_call_success"] == 1.0
    by_id = {s["id"]: s for s in results["scenarios"]}
    recorded = [by_id[f"cc-{name}"] for name in ("read_edit", "multi_turn", "subagent")]  # from the cassettes
    assert all(scenario["turns"] for scenario in recorded)
    assert any(scenario_id.startswith("smoke-") for scenario_id in by_id)
