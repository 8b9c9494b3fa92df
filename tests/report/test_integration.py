"""The reports on real `ccbench run` output (embedded reference backend), and the crafted fixtures
checked against the results contract, so the other tests do not drift from what `run` writes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from harness.cli import main
from tests.report.factory import repeats, results, scenario, turn

results_module = pytest.importorskip("harness.results")


@pytest.mark.parametrize(
    "data",
    [
        results(),
        results(
            per_repeat=repeats([0.9, 0.8], [100, 120], [400, 420]),
            scenarios=[scenario("a", [turn(0, passed=False)])],
        ),
    ],
)
def test_crafted_results_follow_the_contract(data):
    assert results_module.contract_problems(data) == []


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One real `ccbench run --suite smoke` against the embedded reference backend (about 2 s)."""
    out = tmp_path_factory.mktemp("run")
    args = [
        "run",
        "--suite",
        "smoke",
        "--out",
        str(out / "ref.json"),
        "--html",
        str(out / "ref.html"),
        "--junit",
        str(out / "ref.xml"),
    ]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 0, outcome.output
    return out


def test_run_reports_from_real_results(reference_run):
    data = json.loads((reference_run / "ref.json").read_text())
    suite = ET.parse(reference_run / "ref.xml").getroot().find("testsuite")
    cases = sum(len(s["turns"]) + len(s["count_tokens"]) for s in data["scenarios"])  # a testcase per request
    assert suite.get("tests") == str(cases) and suite.get("failures") == "0"
    names = [(c.get("classname"), c.get("name")) for c in suite.iter("testcase")]
    assert len(set(names)) == len(names)  # every turn has its own testcase name
    assert data["model"] in (reference_run / "ref.html").read_text()


def test_gate_real_run_against_itself_and_a_broken_copy(reference_run, tmp_path):
    ref = reference_run / "ref.json"
    same = CliRunner().invoke(main, ["gate", "--baseline", str(ref), "--candidate", str(ref)])
    assert same.exit_code == 0, same.output
    broken = json.loads(ref.read_text())
    victim = broken["scenarios"][0]
    victim["passed"], victim["failure_class"] = False, "model_no_tool"
    victim["turns"][0].update(
        passed=False, failure_class="model_no_tool", tool_call_success=False, tool_calls=[]
    )
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    outcome = CliRunner().invoke(
        main, ["gate", "--baseline", str(ref), "--candidate", str(tmp_path / "broken.json")]
    )
    assert outcome.exit_code == 1
    assert f"scenario {victim['id']}" in outcome.output
