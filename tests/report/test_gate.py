"""Gate decisions on crafted pairs of results files, through the real `ccbench gate` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.gate import GateThresholds, build_thresholds, evaluate_gate
from harness.report_data import parse_results
from tests.report.factory import repeats, results, scenario, turn, write


def gate(tmp_path: Path, baseline: dict, candidate: dict, *args: str):
    """Run `ccbench gate` on two crafted files; returns the click result."""
    base = write(tmp_path / "baseline.json", baseline)
    cand = write(tmp_path / "candidate.json", candidate)
    return CliRunner().invoke(main, ["gate", "--baseline", str(base), "--candidate", str(cand), *args])


def verdicts(baseline: dict, candidate: dict, **thresholds) -> dict[str, str]:
    result = evaluate_gate(
        parse_results(baseline, "b"), parse_results(candidate, "c"), GateThresholds(**thresholds)
    )
    return {c.name: c.verdict for c in result.checks} | {
        f"scenario:{c.id}": c.verdict for c in result.scenario_checks
    }


def test_equal_results_pass(tmp_path):
    outcome = gate(tmp_path, results(), results(model="qwen3-8b-new"))
    assert outcome.exit_code == 0, outcome.output
    assert "PASS" in outcome.output
    assert set(verdicts(results(), results()).values()) == {"pass"}


def test_better_candidate_passes(tmp_path):
    better = results(tool_call_success=1.0, ttft_p95=120.0, latency_p95=500.0, errors=0)
    worse_base = results(
        errors=2,
        scenarios=[scenario("read-file"), scenario("edit-file", [turn(0, passed=False)]), scenario("grep")],
    )
    outcome = gate(tmp_path, worse_base, better)
    assert outcome.exit_code == 0, outcome.output
    assert verdicts(worse_base, better)["scenario:edit-file"] == "pass"


WORSE_ON_EACH_METRIC = {
    "schema_validity": {"schema_validity": 0.95},
    "tool_call_success": {"tool_call_success": 0.70},
    "spurious_tool_calls": {"spurious_tool_calls": 0.30},
    "count_tokens_validity": {"count_tokens_validity": 0.5},
    "ttft_p95": {"ttft_p95": 600.0},
    "latency_p95": {"latency_p95": 2000.0},
    "errors": {"errors": 2},
}


@pytest.mark.parametrize("metric", list(WORSE_ON_EACH_METRIC))
def test_clearly_worse_fails_exactly_that_check(tmp_path, metric):
    candidate = results(**WORSE_ON_EACH_METRIC[metric])
    outcome = gate(tmp_path, results(), candidate)
    assert outcome.exit_code == 1, outcome.output
    assert "FAIL" in outcome.output
    failing = [name for name, verdict in verdicts(results(), candidate).items() if verdict == "fail"]
    assert failing == [metric]


def test_scenario_regression_fails_and_can_be_allowed(tmp_path):
    broken = [
        scenario("read-file"),
        scenario("edit-file", [turn(0, passed=False, failure_class="model_bad_arguments")]),
        scenario("grep"),
    ]
    candidate = results(scenarios=broken)
    failing = [name for name, verdict in verdicts(results(), candidate).items() if verdict == "fail"]
    assert failing == ["scenario:edit-file"]
    outcome = gate(tmp_path, results(), candidate)
    assert outcome.exit_code == 1
    assert "edit-file" in outcome.output and "model_bad_arguments" in outcome.output
    allowed = gate(tmp_path, results(), candidate, "--allow-scenario-regression", "edit-file")
    assert allowed.exit_code == 0, allowed.output
    assert "allowed" in allowed.output


def test_a_candidate_that_ran_fewer_scenarios_fails_unless_allowed(tmp_path):
    """Dropping scenarios must not pass the gate: neither ones that passed nor ones that failed (leaving out
    a failing scenario would also raise the candidate's rates). New scenarios in the candidate are skipped."""
    base = results(scenarios=[scenario("read-file"), scenario("edit-file", [turn(0, passed=False)])])
    cand = results(scenarios=[scenario("read-file"), scenario("brand-new")])
    assert verdicts(base, cand)["scenario:edit-file"] == "fail"
    assert verdicts(base, cand)["scenario:brand-new"] == "skip"
    assert verdicts(base, cand, allow_missing=True)["scenario:edit-file"] == "skip"
    outcome = gate(tmp_path, base, cand, "--junit", str(tmp_path / "j.xml"))
    assert outcome.exit_code == 1
    assert "not run by the candidate" in outcome.output
    assert "not run by the candidate" in (tmp_path / "j.xml").read_text()
    assert gate(tmp_path, base, cand, "--allow-missing-scenarios").exit_code == 0
    config = tmp_path / "gate.yaml"
    config.write_text("allow_missing: true\n")
    assert gate(tmp_path, base, cand, "--config", str(config)).exit_code == 0


def test_scenario_failing_in_both_is_not_a_regression():
    failing = [scenario("read-file", [turn(0, passed=False)]), scenario("edit-file"), scenario("grep")]
    assert verdicts(results(scenarios=failing), results(scenarios=failing))["scenario:read-file"] == "pass"


def test_slightly_worse_inside_the_noise_passes_and_says_so(tmp_path):
    # Summary values breach the thresholds (tool -7 pts, TTFT +33 % and +100 ms), but the repeats spread widely.
    baseline = results(
        tool_call_success=0.85,
        ttft_p95=300.0,
        per_repeat=repeats([0.95, 0.75, 0.85], [200, 400, 300], [800] * 3),
    )
    candidate = results(
        tool_call_success=0.78,
        ttft_p95=400.0,
        per_repeat=repeats([0.9, 0.7, 0.74], [300, 500, 400], [800] * 3),
    )
    found = verdicts(baseline, candidate)
    assert found["tool_call_success"] == "noise" and found["ttft_p95"] == "noise"
    outcome = gate(tmp_path, baseline, candidate)
    assert outcome.exit_code == 0, outcome.output
    assert "within noise" in outcome.output
    plain = verdicts(baseline, candidate, noise_sigma=0)
    assert plain["tool_call_success"] == "fail" and plain["ttft_p95"] == "fail"


def test_clearly_worse_outside_tight_repeats_still_fails():
    baseline = results(tool_call_success=0.85, per_repeat=repeats([0.85, 0.86, 0.84], [200] * 3, [800] * 3))
    candidate = results(tool_call_success=0.60, per_repeat=repeats([0.60, 0.61, 0.59], [200] * 3, [800] * 3))
    assert verdicts(baseline, candidate)["tool_call_success"] == "fail"


def test_latency_growth_under_the_absolute_floor_passes():
    fast = results(ttft_p95=10.0, latency_p95=30.0)
    slower = results(ttft_p95=30.0, latency_p95=70.0)  # +200 % / +133 %, but only +20 / +40 ms
    found = verdicts(fast, slower)
    assert found["ttft_p95"] == "pass" and found["latency_p95"] == "pass"
    assert verdicts(fast, slower, latency_floor_ms=10)["latency_p95"] == "fail"


def test_null_rates_are_skipped_not_counted_as_perfect():
    found = verdicts(results(tool_call_success=None), results(tool_call_success=None))
    assert found["tool_call_success"] == "skip"


def test_errors_compare_per_run_when_repeat_counts_differ():
    three_runs = results(errors=3, per_repeat=repeats([0.9] * 3, [200] * 3, [800] * 3, [1, 1, 1]))
    assert verdicts(three_runs, results(errors=1))["errors"] == "pass"
    assert verdicts(three_runs, results(errors=2))["errors"] == "fail"


def test_config_file_and_flags_flags_win(tmp_path):
    config = tmp_path / "gate.yaml"
    config.write_text("max-tool-drop: 0.30\nallow_regressions: [grep]\n")
    worse = results(tool_call_success=0.70)
    assert gate(tmp_path, results(), worse, "--config", str(config)).exit_code == 0
    outcome = gate(tmp_path, results(), worse, "--config", str(config), "--max-tool-drop", "0.1")
    assert outcome.exit_code == 1
    thresholds = build_thresholds(
        {"allow_regressions": ("grep",)}, {"allow_regressions": ("edit-file",), "max_tool_drop": None}
    )
    assert thresholds.allow_regressions == ("grep", "edit-file") and thresholds.max_tool_drop == 0.05


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        (json.dumps({**results(), "schema_version": 2}), "schema_version 2 is not supported"),
        (json.dumps([1, 2]), "expected a JSON object"),
        (
            json.dumps({**results(), "summary": {"tool_call_success": "high"}}),
            "summary.tool_call_success must be a number",
        ),
        (
            json.dumps({**results(), "summary": {"latency_ms": "fast"}}),
            "summary.latency_ms must be an object",
        ),
        (json.dumps(results(scenarios=[scenario("other")])), "no scenarios in common"),
        # the shape is right but the numbers are impossible: a corrupted or hand-edited file must not pass
        (
            json.dumps(results(schema_validity=1e40)),
            "summary.schema_validity: 1e+40 is greater than the maximum of 1",
        ),
        (json.dumps(results(errors=-1)), "summary.errors: -1 is less than the minimum of 0"),
        (  # was "must be a number or null, got float"
            json.dumps(results(schema_validity=float("nan"))),
            "summary.schema_validity must be a number or null, got NaN (not a finite number)",
        ),
        (
            json.dumps(results(latency_p95=float("-inf"))),
            "summary.latency_ms.p95 must be a number or null, got -Infinity (not a finite number)",
        ),
        (
            json.dumps(results(scenarios=[scenario("grep"), scenario("edit-file"), scenario("grep")])),
            "scenario 'grep' appears more than once",
        ),
        (  # was "'scenarios' must be a list, got null"
            json.dumps({"schema_version": 1, "kind": "live", "summary": {"tasks": 1}, "tasks": []}),
            "is a `ccbench live` report (task success of the real CLI), not a `ccbench run` results file",
        ),
        (  # was read as null: a repeat silently left out of the noise band
            json.dumps(results(per_repeat=[{"latency_ms_p95": 800.0}, {"latency_ms_p95": float("nan")}])),
            "summary.per_repeat[1].latency_ms_p95 must be a number or null, got NaN (not a finite number)",
        ),
        (  # was read as null, then derived from the turns
            json.dumps(results(scenarios=[{**scenario("read-file"), "pass_rate": float("inf")}])),
            "scenarios[0].pass_rate must be a number or null, got Infinity (not a finite number)",
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path, content, message):
    base = write(tmp_path / "baseline.json", results())
    cand = tmp_path / "candidate.json"
    if content is not None:
        cand.write_text(content)
    outcome = CliRunner().invoke(main, ["gate", "--baseline", str(base), "--candidate", str(cand)])
    assert outcome.exit_code == 2, outcome.output
    assert message in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize(
    ("yaml_text", "args", "message"),
    [
        ("max_tool_dorp: 0.1\n", [], "unknown key 'max_tool_dorp'"),
        ("max_tool_drop: lots\n", [], "must be a non-negative number"),
        ("allow_regressions: grep\n", [], "must be a list of scenario ids"),
        ("allow_missing: 1\n", [], "allow_missing must be true or false"),
        (": [\n", [], "not valid YAML"),
        ("", ["--max-latency-growth", "-1"], "Invalid value for '--max-latency-growth'"),
    ],
)
def test_bad_gate_config_exits_2(tmp_path, yaml_text, args, message):
    config = tmp_path / "gate.yaml"
    config.write_text(yaml_text)
    outcome = gate(tmp_path, results(), results(), "--config", str(config), *args)
    assert outcome.exit_code == 2, outcome.output
    assert message in outcome.output


def test_markdown_report_names_the_failing_check(tmp_path):
    out = tmp_path / "gate.md"
    outcome = gate(tmp_path, results(), results(latency_p95=2000.0), "--markdown", str(out))
    assert outcome.exit_code == 1
    text = out.read_text()
    assert "## ccbench gate: ❌" in text
    latency_row = next(line for line in text.splitlines() if line.startswith("| Latency p95"))
    assert "❌ fail" in latency_row and "+1,200 ms" in latency_row


def test_html_report_heads_with_the_verdict_and_checks(tmp_path):
    out = tmp_path / "gate.html"
    outcome = gate(tmp_path, results(), results(model="new <i>model</i>", errors=3), "--html", str(out))
    assert outcome.exit_code == 1
    text = out.read_text()
    assert '<p class="verdict bad">FAIL: 1 regression(s): Errors per run</p>' in text
    assert '<span class="pill bad">fail</span>' in text and text.count('<svg class="chart"') == 3
    assert "new &lt;i&gt;model&lt;/i&gt;" in text and "<i>model</i>" not in text


def test_gate_reports_go_into_missing_folders(tmp_path):
    """`--junit reports/gate.xml` in a fresh CI checkout: the folder is made, and the reports are written
    for a failing gate too (exit 1)."""
    junit, markdown = tmp_path / "reports" / "ci" / "gate.xml", tmp_path / "reports" / "gate.md"
    outcome = gate(tmp_path, results(), results(errors=3), "--junit", str(junit), "--markdown", str(markdown))
    assert outcome.exit_code == 1, outcome.output
    assert "<testsuite" in junit.read_text() and "## ccbench gate: ❌" in markdown.read_text()


@pytest.mark.parametrize("option", ["--junit", "--markdown", "--html"])
def test_gate_refuses_an_unwritable_report_before_judging(tmp_path, option):
    plain_file = tmp_path / "plain.txt"
    plain_file.write_text("not a folder")
    outcome = gate(tmp_path, results(), results(errors=3), option, str(plain_file / "gate.out"))
    assert outcome.exit_code == 2, outcome.output
    assert f"cannot write {plain_file / 'gate.out'}: Not a directory" in outcome.output
    assert "FAIL" not in outcome.output  # a usage error, not a verdict
    empty = gate(tmp_path, results(), results(), option, "")
    assert empty.exit_code == 2 and "an empty name is not a file" in empty.output


def test_the_gate_says_why_the_candidate_failed_in_terminal_and_markdown(tmp_path):
    """A tool-call drop that is a server flag (the parser off) or a context too small is named as such."""
    from proxy.translate.textcalls import text_tool_call_problem

    as_text = turn(0, passed=False, problems=[text_tool_call_problem("<tool_call>")])
    too_long = turn(0, passed=False, failure_class="backend_error")
    too_long["error"] = {
        "type": "invalid_request_error",
        "message": "prompt is too long: 13248 tokens > 7872 maximum",
    }
    fence = turn(0, passed=False, failure_class="backend_error")
    fence["error"] = {"type": "api_error", "message": "backend said ```\n# injected heading"}
    candidate = results(
        tool_call_success=0.3,
        scenarios=[
            scenario("read-file", [as_text]),
            scenario("edit-file", [too_long]),
            scenario("grep", [fence]),
        ],
    )
    out = tmp_path / "gate.md"
    outcome = gate(tmp_path, results(), candidate, "--markdown", str(out))
    assert outcome.exit_code == 1
    assert "why the candidate's turns failed:" in outcome.output
    assert "1 of 1 turns without a tool call wrote one as text instead" in outcome.output
    assert "1 × invalid_request_error: prompt is too long: 13248 tokens > 7872 maximum" in outcome.output
    text = out.read_text()
    section = text.split("### Why the candidate's turns failed", 1)[1]
    assert section.startswith("\n\n````text\n") and section.rstrip().endswith("````")
    assert "--tool-call-parser NAME" in section and "the largest prompt here was 13,248 tokens" in section
    assert "```" not in section.replace("````", "")  # backend text cannot close the fence
    clean = gate(tmp_path, results(), results(model="same"), "--markdown", str(out))
    assert clean.exit_code == 0 and "why the candidate" not in clean.output
    assert "Why the candidate" not in out.read_text()
