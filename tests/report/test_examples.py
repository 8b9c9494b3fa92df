"""The shipped examples stay in step with the code: gate.yaml holds the real defaults, the CI recipes parse."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.gate import GateThresholds, build_thresholds, load_gate_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_gate_yaml_is_the_documented_defaults():
    config = load_gate_config(EXAMPLES / "gate.yaml")
    assert set(config) == {f for f in GateThresholds.__dataclass_fields__}
    assert build_thresholds(config, {}) == GateThresholds()


def test_github_actions_job_runs_both_models_and_the_gate():
    workflow = yaml.safe_load((EXAMPLES / "github-actions-gate.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "ccbench backend start llamacpp" in scripts and "/health" in scripts
    assert scripts.count("ccbench run ") == 2 and "--repeat" in scripts
    # both runs under the same conditions, bounded for a CPU runner (the gate notes runs that differ)
    assert scripts.count('--max-output-tokens "$MAX_OUTPUT_TOKENS"') == 2
    assert int(workflow["jobs"]["gate"]["env"]["MAX_OUTPUT_TOKENS"]) > 0
    assert (
        "ccbench gate --baseline baseline.json --candidate candidate.json" in scripts
        and "--junit gate.xml" in scripts
    )
    always = [step for step in steps if step.get("if") == "always()"]
    assert any("upload-artifact" in step.get("uses", "") for step in always)
    assert any(step.get("with", {}).get("report_paths") == "gate.xml" for step in always)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_gate_script_is_valid_bash():
    check = subprocess.run(
        ["bash", "-n", str(EXAMPLES / "gate.sh")], capture_output=True, text=True, timeout=10, check=False
    )
    assert check.returncode == 0, check.stderr
