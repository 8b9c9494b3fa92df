"""Results files of both layouts read alike: count_tokens calls as `scenarios[].count_tokens[]` (current) and as
`"kind": "count_tokens"` entries inside `scenarios[].turns[]` (files written before; users commit baselines).

`data/results-count-tokens-in-turns.json` is a real `ccbench run --suite smoke --repeat 2 --out` file written by
ccbench before the count_tokens list existed; `split_count_tokens` below (independent of harness code) turns it
into the current layout, so every reader is checked on the same run in both layouts.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report import write_html, write_junit_run, write_markdown
from harness.report_data import load_results_file, parse_results
from harness.results import contract_problems, load_results
from tests.report.factory import write
from tests.support import COUNT_TOKENS_CALL_FIELDS

OLD_FILE = Path(__file__).parent / "data" / "results-count-tokens-in-turns.json"
COUNTED = "smoke-count-tokens"
CALL_FIELDS = COUNT_TOKENS_CALL_FIELDS


def old_results() -> dict:
    return json.loads(OLD_FILE.read_text())


def split_count_tokens(old: dict) -> dict:
    """The current layout of an old file: count_tokens entries move from turns[] to count_tokens[]."""
    new = copy.deepcopy(old)
    for item in new["scenarios"]:
        entries = item["turns"]
        item["turns"] = [t for t in entries if t.get("kind", "messages") == "messages"]
        calls = [t for t in entries if t.get("kind") == "count_tokens"]
        item["count_tokens"] = [{key: t[key] for key in CALL_FIELDS if key in t} for t in calls]
    return new


def fail_second_count_tokens(data: dict, *, contract_only: bool = False) -> dict:
    """The same run with the repeat-1 count_tokens check failed (its scenario fails that repeat)."""
    data = copy.deepcopy(data)
    item = next(s for s in data["scenarios"] if s["id"] == COUNTED)
    calls = item.get("count_tokens") or [t for t in item["turns"] if t.get("kind") == "count_tokens"]
    calls[1].update(
        schema_valid=False,
        passed=False,
        failure_class="proxy_protocol",
        problems=["count_tokens: input_tokens is not positive"],
        count_tokens_error=None,
    )
    item.update(passed=False, pass_rate=0.5, pass_hat_k=0.0, failure_class="proxy_protocol")
    if contract_only:  # DESIGN fields only: pass/fail and the class are derived from the entries
        for key in ("passed", "pass_rate", "pass_hat_k", "failure_class"):
            item.pop(key)
        for entry in [*item["turns"], *item.get("count_tokens", [])]:
            for key in ("passed", "failure_class"):
                entry.pop(key)
    summary = data["summary"]
    summary.update(count_tokens_validity=0.5, scenario_pass_rate=23 / 24, pass_hat_k=11 / 12)
    summary["failure_classes"]["proxy_protocol"] = 1
    summary["per_repeat"][1]["scenario_pass_rate"] = 11 / 12
    return data


def test_load_results_hands_an_old_file_over_in_the_current_layout() -> None:
    old = old_results()
    loaded = load_results(OLD_FILE)
    assert loaded == split_count_tokens(old)
    assert contract_problems(loaded) == []
    assert loaded["summary"] == old["summary"]
    turns = [t for s in loaded["scenarios"] for t in s["turns"]]
    assert len(turns) == loaded["summary"]["turns"] == 26
    assert [len(s["count_tokens"]) for s in loaded["scenarios"] if s["count_tokens"]] == [2]


def test_the_schema_describes_the_current_layout_only() -> None:
    """Old files are converted by the loaders, not accepted by the schema: a count_tokens entry back in turns[]
    is a broken file, so a writer regression cannot slip through the contract tests."""
    problems = contract_problems(old_results())
    assert problems and all("kind" in p for p in problems)


@pytest.mark.parametrize("broken", [False, True], ids=["passing", "failed-count-tokens"])
def test_reports_read_both_layouts_alike(tmp_path: Path, broken: bool) -> None:
    old = fail_second_count_tokens(old_results()) if broken else old_results()
    layouts = {"old": old, "new": split_count_tokens(old)}
    written = {}
    for name, data in layouts.items():
        folder = tmp_path / name
        folder.mkdir()
        write_junit_run(data, folder / "run.xml")
        write_html(data, folder / "run.html")
        write_markdown(data, folder / "run.md")
        written[name] = {path.name: path.read_text() for path in folder.iterdir()}
        view = load_results_file(write(folder / "results.json", data))
        assert view == parse_results(data, str(folder / "results.json"))
    assert written["old"] == written["new"]
    cases = ET.fromstring(written["new"]["run.xml"]).iter("testcase")
    names = {c.get("name"): c for c in cases if c.get("classname") == f"ccbench.run.{COUNTED}"}
    assert set(names) >= {"turn 0 repeat 0 (count_tokens)", "turn 0 repeat 1 (count_tokens)"}
    failure = names["turn 0 repeat 1 (count_tokens)"].find("failure")
    assert (failure is not None) == broken
    assert len(names) == 4  # two messages turns, two count_tokens calls


@pytest.mark.parametrize("contract_only", [False, True], ids=["extensions", "contract-only"])
def test_a_failed_count_tokens_check_fails_its_scenario_in_either_layout(contract_only: bool) -> None:
    old = fail_second_count_tokens(old_results(), contract_only=contract_only)
    for layout, data in {"old": old, "new": split_count_tokens(old)}.items():
        run = parse_results(data, layout)
        scenario = run.scenario(COUNTED)
        assert scenario is not None and not scenario.passed, layout
        assert (scenario.failure_class, scenario.pass_rate) == ("proxy_protocol", 0.5), layout
        (failing,) = scenario.failing_turns
        assert (failing.kind, failing.repeat, failing.problems) == (
            "count_tokens",
            1,
            ["count_tokens: input_tokens is not positive"],
        ), layout
        assert all(s.passed for s in run.scenarios if s.id != COUNTED), layout


@pytest.mark.parametrize("baseline_layout", ["old", "new"])
def test_gate_and_compare_take_an_old_baseline_and_a_new_candidate(
    tmp_path: Path, baseline_layout: str
) -> None:
    baseline = old_results() if baseline_layout == "old" else split_count_tokens(old_results())
    base = write(tmp_path / "baseline.json", baseline)
    same = write(tmp_path / "same.json", split_count_tokens(old_results()))
    broken = fail_second_count_tokens(old_results(), contract_only=True)  # the scenario fails by its entries
    worse = write(tmp_path / "worse.json", split_count_tokens(broken))
    runner = CliRunner()
    passed = runner.invoke(main, ["gate", "--baseline", str(base), "--candidate", str(same)])
    assert passed.exit_code == 0, passed.output
    failed = runner.invoke(main, ["gate", "--baseline", str(base), "--candidate", str(worse)])
    assert failed.exit_code == 1, failed.output
    assert COUNTED in failed.output and "count_tokens validity" in failed.output
    compared = runner.invoke(main, ["compare", str(base), str(worse)])
    assert compared.exit_code == 0, compared.output
    assert COUNTED in compared.output
