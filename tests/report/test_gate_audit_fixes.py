"""Gate verdicts an audit of `ccbench gate` found wrong (2026-12-04): a flaky scenario that broke completely
passed, a tie with the noise band was decided by float rounding, the band excused a +239 % latency, and scenario
ids broke the Markdown table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report import write_junit_run
from harness.report_data import load_results_file
from harness.stats import NoiseBand
from tests.report.factory import repeats, results, scenario, turn, write

FLAT = repeats([1.0, 1.0, 1.0], [300, 300, 300], [800, 800, 800])


def flaky(scenario_id: str, passed_in: list[bool]) -> dict:
    turns = [turn(0, repeat=r, passed=p) for r, p in enumerate(passed_in)]
    return scenario(scenario_id, turns, repeats=len(passed_in))


def gate(tmp_path: Path, baseline: dict, candidate: dict, *extra: str) -> tuple[int, str, str]:
    b, c = write(tmp_path / "b.json", baseline), write(tmp_path / "c.json", candidate)
    md = tmp_path / "gate.md"
    outcome = CliRunner().invoke(
        main, ["gate", "--baseline", str(b), "--candidate", str(c), "--markdown", str(md), *extra]
    )
    return outcome.exit_code, outcome.output, md.read_text() if md.exists() else ""


def test_a_scenario_that_passed_in_some_baseline_repeats_and_in_no_candidate_repeat_regressed(
    tmp_path: Path,
) -> None:
    baseline = results(per_repeat=FLAT, scenarios=[flaky("smoke-single-tool", [True, False, True])])
    candidate = results(per_repeat=FLAT, scenarios=[flaky("smoke-single-tool", [False, False, False])])
    code, output, markdown = gate(tmp_path, baseline, candidate)
    assert code == 1, output
    assert "passed in 2/3 baseline repeats, in none of the candidate's" in output
    allowed = gate(tmp_path, baseline, candidate, "--allow-scenario-regression", "smoke-single-tool")
    assert allowed[0] == 0, allowed[1]
    still_flaky = results(per_repeat=FLAT, scenarios=[flaky("smoke-single-tool", [False, True, False])])
    code, output, markdown = gate(tmp_path, baseline, still_flaky)
    assert code == 0, output  # flaky in both: not a regression, but named, not only counted
    assert "scenario smoke-single-tool: fails in both" in output
    assert "`smoke-single-tool`" in markdown and "fails in both" in markdown


def test_an_exact_tie_with_the_noise_band_is_inside_it() -> None:
    band = NoiseBand(delta_mean=0.09523809523809534, band=0.09523809523809527, baseline_n=3, candidate_n=3)
    assert band.within
    assert not NoiseBand(delta_mean=0.0953, band=0.0952, baseline_n=3, candidate_n=3).within


def test_the_noise_band_never_excuses_a_breach_beyond_twice_the_threshold(tmp_path: Path) -> None:
    """One lucky candidate repeat widened the band until a +239 % p95 latency was "within noise"."""
    baseline = results(latency_p95=1126.0, per_repeat=repeats([1.0] * 3, [300] * 3, [1459, 893, 1020]))
    candidate = results(latency_p95=3820.0, per_repeat=repeats([1.0] * 3, [300] * 3, [959, 3695, 3967]))
    code, output, markdown = gate(tmp_path, baseline, candidate)
    assert code == 1, output
    assert "+239 % (+2,694 ms): over twice the threshold, which the noise band never excuses" in markdown
    mild = results(latency_p95=1300.0, per_repeat=repeats([1.0] * 3, [300] * 3, [959, 1500, 1600]))
    code, output, _ = gate(tmp_path, baseline, mild)  # +15 % … within the band and under twice 20 %
    assert code == 0, output


@pytest.mark.parametrize("hostile", ["smoke|single`tool`\n<b>x</b>", "a``b|c"])
def test_scenario_ids_cannot_break_the_markdown_table(tmp_path: Path, hostile: str) -> None:
    baseline = results(scenarios=[scenario(hostile)])
    candidate = results(scenarios=[scenario(hostile, [turn(0, passed=False)])])
    code, _, markdown = gate(tmp_path, baseline, candidate)
    assert code == 1
    (row,) = [line for line in markdown.splitlines() if line.startswith("| `")]
    cells = row.replace("\\|", "").split(" | ")
    assert len(cells) == 3  # scenario, verdict, why: no cell split by the id's pipe
    if "<b>" in hostile:
        assert "<b>x</b>" in row  # inert inside code, and shown as it is


def test_junit_stays_well_formed_with_control_characters_in_ids_and_messages(tmp_path: Path) -> None:
    """Scenario ids are free strings and backend error messages are copied as they came: a \\x01 or an ANSI escape
    made the whole JUnit file unparseable for the CI."""
    hostile = "id-with-ctrl\u0001\u001b[31m"
    baseline = results(model="m\u0007", scenarios=[scenario(hostile)])
    failing = turn(0, passed=False, problems=["backend said \u0000 nothing \udc80"])
    candidate = results(scenarios=[scenario(hostile, [failing])])
    b, c = write(tmp_path / "b.json", baseline), write(tmp_path / "c.json", candidate)
    xml_file = tmp_path / "gate.xml"
    args = ["gate", "--baseline", str(b), "--candidate", str(c), "--junit", str(xml_file)]
    assert CliRunner().invoke(main, args).exit_code == 1
    root = ET.fromstring(xml_file.read_bytes())
    names = [case.get("name") for case in root.iter("testcase")]
    assert "id-with-ctrl\ufffd\ufffd[31m" in names
    run_xml = tmp_path / "run.xml"
    write_junit_run(candidate, run_xml)
    ET.fromstring(run_xml.read_bytes())  # parses


def test_a_scenario_claiming_a_pass_its_turns_refute_is_refused(tmp_path: Path) -> None:
    """The loader took a scenario's stored `passed` over its own turns: a hand-edited (or badly merged)
    candidate with `"passed": true` on a scenario whose turn failed passed the gate's scenario check."""
    baseline = write(tmp_path / "base.json", results(scenarios=[scenario("edit-file")]))
    tampered = scenario("edit-file", [turn(0), turn(1, passed=False)])
    tampered["passed"] = True
    candidate = write(tmp_path / "cand.json", results(scenarios=[tampered]))
    outcome = CliRunner().invoke(main, ["gate", "--baseline", str(baseline), "--candidate", str(candidate)])
    assert outcome.exit_code == 2
    assert "scenarios[0] (edit-file) says passed, but its turn 1 (repeat 0) failed" in outcome.output


def test_a_turn_claiming_a_pass_its_own_fields_refute_counts_as_failed(tmp_path: Path) -> None:
    """A turn with `"passed": true` beside an error (or an invalid schema) is read as failed, with its class."""
    broken = turn(0)
    broken["error"] = {"type": "api_error", "message": "backend closed the stream early"}
    data = results(scenarios=[scenario("read-file", [broken])])
    data["scenarios"][0]["passed"] = False  # the scenario itself is consistent with what the turn says
    run = load_results_file(write(tmp_path / "r.json", data))
    (only,) = run.scenarios[0].turns
    assert not only.passed and only.failure_class is not None
