"""JUnit XML for CI systems: the gate (one testcase per threshold and per scenario) and a single run
(one testcase per scenario turn), so GitHub, GitLab and Jenkins list ccbench failures natively."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from harness.gate import Check, GateResult, ScenarioCheck
from harness.report_data import RunView, TurnView
from harness.report_labels import format_value

GATE_SUITE = "ccbench-gate"
THRESHOLD_CLASS = "ccbench.gate.thresholds"
SCENARIO_CLASS = "ccbench.gate.scenarios"


def gate_junit(result: GateResult) -> ET.ElementTree:
    """One testsuite "ccbench-gate"; "noise" and "allowed" pass with the reason in <system-out>."""
    cases = [_threshold_case(c) for c in result.checks] + [_scenario_case(c) for c in result.scenario_checks]
    properties = {
        "baseline": result.baseline.label,
        "baseline_file": result.baseline.source,
        "candidate": result.candidate.label,
        "candidate_file": result.candidate.source,
        "verdict": result.verdict_line,
    }
    return _document(GATE_SUITE, cases, properties)


def run_junit(run: RunView) -> ET.ElementTree:
    """One testsuite per run, one testcase per scenario turn (and repeat), classname ccbench.run.<scenario>."""
    cases = []
    for scenario in run.scenarios:
        for turn, name in zip(scenario.turns, scenario.turn_names(run.repeats > 1), strict=True):
            case = ET.Element("testcase", classname=f"ccbench.run.{scenario.id}", name=name)
            if turn.latency_ms is not None:
                case.set("time", f"{turn.latency_ms / 1000:.3f}")
            if not turn.passed:
                _add_turn_failure(case, turn)
            cases.append(case)
    properties = {"model": run.model, "backend": run.preset, "base_url": run.base_url}
    properties |= {
        key: format_value("rate", run.metrics.get(key)) for key in ("schema_validity", "tool_call_success")
    }
    return _document(f"ccbench-run {run.label}", cases, properties)


def _add_turn_failure(case: ET.Element, turn: TurnView) -> None:
    """<failure type=CLASS message="CLASS: first problem">, the body listing every problem and tool call."""
    details = list(turn.problems)
    if turn.error:
        details.append(f"error: {turn.error.get('type', '')}: {turn.error.get('message', '')}")
    details += [
        f"tool call: {c.get('name')} {json.dumps(c.get('input'), ensure_ascii=False)}"
        for c in turn.tool_calls
    ]
    if turn.expected_tools:
        details.append(f"expected tools: {', '.join(turn.expected_tools)}")
    failure_class = turn.failure_class or "failed"
    first = turn.problems[0] if turn.problems else "turn failed"
    ET.SubElement(case, "failure", message=f"{failure_class}: {first}", type=failure_class).text = "\n".join(
        details
    )


# Characters XML 1.0 does not allow even escaped (ElementTree writes them raw, and CI parsers then reject the
# whole file): control characters a scenario id, a model name or a backend's error message can carry.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def junit_text(tree: ET.ElementTree) -> str:
    """The document as indented UTF-8 XML text with its declaration; characters XML cannot hold become U+FFFD."""
    ET.indent(tree)
    text = ET.tostring(tree.getroot(), encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + NOT_XML.sub("\ufffd", text) + "\n"


def _threshold_case(check: Check) -> ET.Element:
    case = ET.Element("testcase", classname=THRESHOLD_CLASS, name=check.name)
    summary = (
        f"{check.label}: baseline {format_value(check.kind, check.baseline)}, candidate "
        f"{format_value(check.kind, check.candidate)}, delta {check.delta}, threshold {check.threshold}: {check.reason}"
    )
    _set_outcome(case, check.verdict, summary)
    return case


def _scenario_case(check: ScenarioCheck) -> ET.Element:
    case = ET.Element("testcase", classname=SCENARIO_CLASS, name=check.id)
    _set_outcome(case, check.verdict, f"scenario {check.id}: {check.reason}", check.failure_class)
    return case


def _set_outcome(case: ET.Element, verdict: str, message: str, failure_type: str | None = None) -> None:
    if verdict == "fail":
        ET.SubElement(case, "failure", message=message, type=failure_type or "regression").text = message
    elif verdict == "skip":
        ET.SubElement(case, "skipped", message=message)
    else:
        ET.SubElement(case, "system-out").text = f"{verdict}: {message}"


def _document(name: str, cases: list[ET.Element], properties: dict[str, str]) -> ET.ElementTree:
    failures = sum(case.find("failure") is not None for case in cases)
    skipped = sum(case.find("skipped") is not None for case in cases)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    root = ET.Element("testsuites", name="ccbench", **{k: counts[k] for k in ("tests", "failures", "errors")})
    suite = ET.SubElement(root, "testsuite", name=name, **counts)
    props = ET.SubElement(suite, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", name=key, value=value)
    suite.extend(cases)
    return ET.ElementTree(root)
