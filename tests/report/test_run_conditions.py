"""Run conditions (results "run"): recorded by `ccbench run`, compared by gate and compare, which say when two
runs were measured differently (concurrency, output cap, timeout) instead of comparing them silently."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.diagnosis import diagnose
from harness.report_data import parse_results
from harness.results import contract_problems
from harness.run_conditions import condition_notes
from tests.proxy.backend_thread import BackendThread
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks
from tests.report.factory import results, write

CONDITIONS = {"concurrency": 4, "timeout_s": 600.0, "max_output_tokens": None}


def with_conditions(**changes) -> dict:
    return {**results(), "run": {**CONDITIONS, **changes}}


def test_run_records_its_conditions_and_caps_output_tokens(tmp_path: Path) -> None:
    backend = FakeBackend()
    out = tmp_path / "r.json"
    with BackendThread(backend) as running:
        argv = ["run", "--backend", "vllm", "--base-url", running.url, "--suite", "smoke", "--out", str(out)]
        result = CliRunner().invoke(
            main, [*argv, "--concurrency", "2", "--timeout", "30", "--max-output-tokens", "7"]
        )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["run"] == {"concurrency": 2, "timeout_s": 30.0, "max_output_tokens": 7}
    assert contract_problems(data) == []
    sent = [r.body for r in backend.requests if r.path.endswith("/chat/completions")]
    assert sent and all(body["max_tokens"] <= 7 for body in sent)


def test_without_a_cap_the_recorded_max_tokens_go_through(tmp_path: Path) -> None:
    backend = FakeBackend()
    out = tmp_path / "r.json"
    with BackendThread(backend) as running:
        argv = ["run", "--backend", "vllm", "--base-url", running.url, "--suite", "smoke", "--out", str(out)]
        result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["run"]["max_output_tokens"] is None
    sent = [r.body for r in backend.requests if r.path.endswith("/chat/completions")]
    assert sent and max(body["max_tokens"] for body in sent) > 7


def test_a_cap_for_an_anthropic_backend_is_a_usage_error() -> None:
    argv = ["run", "--backend", "anthropic", "--base-url", "http://127.0.0.1:9", "--max-output-tokens", "5"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    assert "--max-output-tokens caps what the proxy sends to an OpenAI-format backend" in result.output


def test_a_results_file_with_a_bad_run_entry_breaks_the_contract() -> None:
    assert contract_problems(with_conditions(concurrency=0))
    assert contract_problems(with_conditions(max_output_tokens="many"))
    assert contract_problems(with_conditions()) == []


def test_notes_name_each_differing_condition_and_nothing_else() -> None:
    base = parse_results(with_conditions(), "b.json")
    same = parse_results(with_conditions(), "c.json")
    assert condition_notes([base, same], ["baseline", "candidate"]) == []
    other = parse_results(with_conditions(concurrency=1, max_output_tokens=512), "c.json")
    notes = condition_notes([base, other], ["baseline", "candidate"])
    assert len(notes) == 2
    assert notes[0].startswith("the runs used different --concurrency (baseline 4, candidate 1): latency")
    assert notes[1].startswith("the runs used different --max-output-tokens (baseline none, candidate 512)")
    # a file from before "run" existed is not compared (its conditions are unknown, not different)
    assert condition_notes([parse_results(results(), "old.json"), other], ["baseline", "candidate"]) == []


def test_gate_notes_different_conditions_in_terminal_markdown_and_html_once(tmp_path: Path) -> None:
    base = write(tmp_path / "baseline.json", with_conditions())
    cand = write(tmp_path / "candidate.json", with_conditions(concurrency=1))
    md, html = tmp_path / "gate.md", tmp_path / "gate.html"
    argv = [
        "gate",
        "--baseline",
        str(base),
        "--candidate",
        str(cand),
        "--markdown",
        str(md),
        "--html",
        str(html),
    ]
    outcome = CliRunner().invoke(main, argv)
    assert outcome.exit_code == 0, outcome.output  # a note, not a verdict
    sentence = "the runs used different --concurrency (baseline 4, candidate 1)"
    assert sentence in " ".join(outcome.output.split())
    assert sentence in md.read_text()
    assert html.read_text().count(sentence) == 1


def test_compare_warns_about_different_conditions(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", with_conditions())
    b = write(tmp_path / "b.json", with_conditions(timeout_s=30.0))
    md, html = tmp_path / "c.md", tmp_path / "c.html"
    outcome = CliRunner().invoke(
        main, ["compare", str(a), str(b), "--markdown", str(md), "--html", str(html)]
    )
    assert outcome.exit_code == 0, outcome.output
    sentence = "the runs used different --timeout (a.json 600, b.json 30)"
    assert sentence in " ".join(outcome.output.split())
    assert sentence in md.read_text() and sentence in html.read_text()
    same = CliRunner().invoke(main, ["compare", str(a), str(a)])
    assert "different" not in same.output


def test_a_run_whose_answers_hit_the_cap_says_the_cap_cut_them(tmp_path: Path) -> None:
    """A model that is still writing when the cap bites (it wrote the 64 tokens it was allowed, as a server
    counts them): the why line names the run's own cap."""
    rambling = Reply(
        chunks=chunks_from_blocks(
            [{"type": "text", "text": "Let me think " * 20}], finish_reason="length", usage=(10, 64)
        )
    )
    backend = FakeBackend(rambling)
    out = tmp_path / "r.json"
    with BackendThread(backend) as running:
        argv = ["run", "--backend", "vllm", "--base-url", running.url, "--suite", "smoke", "--out", str(out)]
        result = CliRunner().invoke(main, [*argv, "--max-output-tokens", "64"])
    assert result.exit_code == 0, result.output
    turns = [
        t for s in json.loads(out.read_text())["scenarios"] for t in s["turns"] if t["kind"] == "messages"
    ]
    failed = [t for t in turns if not t["passed"]]
    cut = [t for t in failed if t["stop_reason"] == "max_tokens"]
    assert cut, failed
    text = " ".join(result.output.split())
    assert f"{len(cut)} of {len(failed)} failed turns stopped at max_tokens, still writing:" in text
    assert "the run's --max-output-tokens 64 cut them" in text


def test_without_a_cap_a_model_that_never_stops_is_named() -> None:
    """Turns of Claude Code's size (32,000 tokens asked, all written): a rambling model, which a cap bounds."""
    data = results()
    for scenario in data["scenarios"]:
        scenario["passed"] = False
        for turn in scenario["turns"]:
            turn.update(passed=False, failure_class="model_no_tool", tool_calls=[], stop_reason="max_tokens")
            turn["output_tokens"] = 32_000
    lines = diagnose(parse_results(data, "r.json"))
    cut = next(i for i, line in enumerate(lines) if "stopped at max_tokens" in line)
    assert lines[cut].endswith("failed turns stopped at max_tokens, still writing:")
    assert "without finishing its answer (it rambles or repeats itself)" in lines[cut + 1]
    assert "--max-output-tokens below 32,000 bounds the time" in lines[cut + 1]
    for scenario in data["scenarios"]:
        for turn in scenario["turns"]:
            turn["stop_reason"] = "end_turn"
    assert not any("max_tokens" in line for line in diagnose(parse_results(data, "r.json")))


def test_html_cards_show_each_runs_conditions(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", with_conditions(max_output_tokens=512))
    html = tmp_path / "c.html"
    outcome = CliRunner().invoke(main, ["compare", str(a), "--html", str(html)])
    assert outcome.exit_code == 0, outcome.output
    assert "<dt>Run</dt><dd>4 at once · timeout 600 s · output cap 512</dd>" in html.read_text()
    old = write(tmp_path / "old.json", results())
    CliRunner().invoke(main, ["compare", str(old), "--html", str(html)])
    assert "<dt>Run</dt>" not in html.read_text()  # a file from before "run": nothing made up
