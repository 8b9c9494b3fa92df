"""JUnit XML from the gate and from a single run, parsed back with ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from click.testing import CliRunner

from harness.cli import main
from harness.report import write_junit_run
from tests.report.factory import repeats, results, scenario, turn, write


def test_gate_junit_counts_and_failure_messages(tmp_path):
    broken = [
        scenario("read-file"),
        scenario("edit-file", [turn(0, passed=False, failure_class="model_wrong_tool")]),
        scenario("grep"),
    ]
    base = write(tmp_path / "a.json", results())
    cand = write(tmp_path / "b.json", results(tool_call_success=0.5, scenarios=broken))
    out = tmp_path / "gate.xml"
    outcome = CliRunner().invoke(
        main, ["gate", "--baseline", str(base), "--candidate", str(cand), "--junit", str(out)]
    )
    assert outcome.exit_code == 1, outcome.output

    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite.get("name") == "ccbench-gate"
    cases = suite.findall("testcase")
    assert suite.get("tests") == str(len(cases)) == "10"  # 7 thresholds + 3 scenarios
    assert suite.get("failures") == "2"
    thresholds = [c for c in cases if c.get("classname") == "ccbench.gate.thresholds"]
    scenarios = [c for c in cases if c.get("classname") == "ccbench.gate.scenarios"]
    assert [c.get("name") for c in thresholds] == [
        "schema_validity",
        "tool_call_success",
        "spurious_tool_calls",
        "count_tokens_validity",
        "ttft_p95",
        "latency_p95",
        "errors",
    ]
    assert [c.get("name") for c in scenarios] == ["read-file", "edit-file", "grep"]
    tool_failure = thresholds[1].find("failure")
    assert "dropped 40.0 pts" in tool_failure.get("message")
    scenario_failure = scenarios[1].find("failure")
    assert scenario_failure.get("type") == "model_wrong_tool"
    assert "passed in the baseline, fails in the candidate" in scenario_failure.get("message")
    assert all(c.find("failure") is None for c in cases if c not in (thresholds[1], scenarios[1]))


def test_gate_junit_marks_noise_as_passing_with_the_reason(tmp_path):
    base = write(
        tmp_path / "a.json",
        results(tool_call_success=0.85, per_repeat=repeats([0.95, 0.75, 0.85], [200] * 3, [800] * 3)),
    )
    cand = write(
        tmp_path / "b.json",
        results(tool_call_success=0.78, per_repeat=repeats([0.9, 0.7, 0.74], [200] * 3, [800] * 3)),
    )
    out = tmp_path / "gate.xml"
    outcome = CliRunner().invoke(
        main, ["gate", "--baseline", str(base), "--candidate", str(cand), "--junit", str(out)]
    )
    assert outcome.exit_code == 0, outcome.output
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite.get("failures") == "0"
    tool = next(c for c in suite.iter("testcase") if c.get("name") == "tool_call_success")
    assert tool.find("failure") is None
    assert "within noise" in tool.find("system-out").text


def test_run_junit_has_one_testcase_per_turn_with_failure_class_and_problems(tmp_path):
    call = {"name": "Edit", "input": {"file_path": 3}, "valid": False}
    bad = turn(
        1,
        passed=False,
        failure_class="model_bad_arguments",
        problems=["input.file_path: 3 is not of type 'string'"],
        tool_calls=[call],
    )
    data = results(scenarios=[scenario("read-file"), scenario("edit-file", [turn(0), bad])])
    out = tmp_path / "run.xml"
    write_junit_run(data, out)

    suite = ET.parse(out).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("ccbench.run.read-file", "turn 0"),
        ("ccbench.run.edit-file", "turn 0"),
        ("ccbench.run.edit-file", "turn 1"),
    ]
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    failure = cases[2].find("failure")
    assert failure.get("type") == "model_bad_arguments"
    assert failure.get("message") == "model_bad_arguments: input.file_path: 3 is not of type 'string'"
    assert 'tool call: Edit {"file_path": 3}' in failure.text
    assert cases[0].get("time") == "0.400"
