"""What the docs and the CI example show is what ccbench does: the gate's JUnit example is real output, the
threshold testcases are all named, the GitHub Actions job posts the comment it asks permission for and needs
no ccbench checkout; a results file without its summary says the key is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.gate import GateThresholds, build_thresholds, load_gate_config
from tests.report.factory import repeats, results, scenario, turn, write

ROOT = Path(__file__).resolve().parents[2]
REPORTS_DOC = ROOT / "docs" / "readme" / "reports.md"
WORKFLOW = ROOT / "examples" / "github-actions-gate.yml"


def documented_junit() -> str:
    text = REPORTS_DOC.read_text()
    start = text.index("```xml\n") + len("```xml\n")
    return text[start : text.index("```\n", start)]


def example_junit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The docs' story: latency regressed, edit-file broke, tool-call success and TTFT worse within noise."""
    baseline = results(
        tool_call_success=0.85, ttft_p95=300.0, latency_p95=800.0, count_tokens_validity=1.0,
        per_repeat=repeats([0.95, 0.75, 0.85], [200, 400, 300], [780, 800, 820]),
        scenarios=[scenario("edit-file")],
    )  # fmt: skip
    candidate = results(
        model="qwen3-8b-q4", tool_call_success=0.78, ttft_p95=400.0, latency_p95=1500.0, count_tokens_validity=1.0,
        per_repeat=repeats([0.9, 0.7, 0.74], [300, 500, 400], [1450, 1500, 1550]),
        scenarios=[scenario("edit-file", [turn(0, passed=False, failure_class="model_bad_arguments")])],
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "baseline.json", baseline)
    write(tmp_path / "candidate.json", candidate)
    args = ["gate", "--baseline", "baseline.json", "--candidate", "candidate.json", "--junit", "gate.xml"]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 1, outcome.output
    return (tmp_path / "gate.xml").read_text(encoding="utf-8")


def test_the_gate_junit_example_is_real_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert documented_junit() == example_junit(tmp_path, monkeypatch)


def test_the_docs_name_every_threshold_testcase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = ET.fromstring(example_junit(tmp_path, monkeypatch)).find("testsuite")
    assert suite is not None
    real = [
        c.get("name") for c in suite.findall("testcase") if c.get("classname") == "ccbench.gate.thresholds"
    ]
    prose = " ".join(REPORTS_DOC.read_text().split())
    listed = re.search(r"classname `ccbench\.gate\.thresholds`, names ((?:`\w+`,? ?)+)\)", prose)
    assert listed, "the sentence naming the threshold testcases is gone"
    assert re.findall(r"`(\w+)`", listed.group(1)) == real


def test_the_ci_job_posts_the_comment_it_asks_permission_for() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    if workflow["permissions"].get("pull-requests") == "write":
        comments = [s for s in steps if "sticky-pull-request-comment" in s.get("uses", "")]
        assert comments and comments[0]["with"]["path"] == "gate.md"
        assert "pull_request" in comments[0]["if"]
    gate = next(s["run"] for s in steps if "ccbench gate " in s.get("run", ""))
    assert "--markdown gate.md" in gate


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_ci_job_writes_its_gate_config(tmp_path: Path) -> None:
    """--config examples/gate.yaml exists only in a ccbench checkout: the job writes the file it passes."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gate"]["steps"]
    gate = next(s["run"] for s in steps if "ccbench gate " in s.get("run", ""))
    config = re.search(r"--config (\S+)", gate)
    assert config and not config.group(1).startswith("examples/")
    writes = gate[: gate.index("ccbench gate ")]  # the script up to the gate command
    done = subprocess.run(["bash", "-euc", writes], cwd=tmp_path, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    written = load_gate_config(tmp_path / config.group(1))
    assert build_thresholds(written, {}) == GateThresholds()  # the defaults, every key spelled right


@pytest.mark.parametrize("key", ["summary", "scenarios"])
def test_a_results_file_without_a_key_says_it_is_missing(tmp_path: Path, key: str) -> None:
    data = results()
    del data[key]
    path = write(tmp_path / "r.json", data)
    outcome = CliRunner().invoke(main, ["compare", str(path)])
    assert outcome.exit_code == 2, outcome.output
    assert f"{path}: the '{key}' key is missing" in outcome.output
    assert "got null" not in outcome.output


def test_the_docs_show_the_example_ci_job() -> None:
    """The README's copy of the job is the example file without its header comment and blank lines."""
    text = REPORTS_DOC.read_text()
    start = text.index("```yaml\nname: ccbench gate\n") + len("```yaml\n")
    shown = text[start : text.index("```\n", start)].splitlines()
    example = [
        line for line in WORKFLOW.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert shown == example
