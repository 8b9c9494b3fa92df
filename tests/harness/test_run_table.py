"""The end-of-run table explains the figures that read like bugs: TTFT p50 above latency p50 (different turns),
a non-zero count_tokens error on the reference run (a word count, not scored)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from harness.run_table import summary_notes, summary_table
from tests.harness.test_run_cli import PROJECT_SCENARIOS, REQUEST, run, scenario_dir


def turn(stream: bool, ttft: float | None, latency: float | None, error: dict | None = None) -> dict:
    return {"kind": "messages", "stream": stream, "ttft_ms": ttft, "latency_ms": latency, "error": error}


def results(turns: list[dict], preset: str = "vllm", count_tokens_error: float | None = None) -> dict:
    """Just what the table reads: the summary numbers do not have to match the turns here."""
    summary = {
        "scenarios": 1, "turns": len(turns), "errors": 0, "schema_validity": 1.0, "tool_call_success": 1.0,
        "spurious_tool_calls": None, "count_tokens_validity": None, "count_tokens_error": count_tokens_error,
        "ttft_ms": {"p50": 13.0, "p95": 20.0}, "latency_ms": {"p50": 11.0, "p95": 20.0},
        "output_tokens_per_s": None, "scenario_pass_rate": 1.0, "repeats": 1, "pass_hat_k": 1.0,
    }  # fmt: skip
    return {
        "backend": {"preset": preset, "base_url": "http://127.0.0.1:8000/v1"},
        "model": "m",
        "summary": summary,
        "scenarios": [{"id": "s", "turns": turns}],
    }


def rendered(data: dict) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(summary_table(data))
    return out.getvalue()


def test_percentile_rows_name_the_turns_they_cover() -> None:
    """Errors count in neither (speed is measured on answers); non-streaming turns have no TTFT."""
    turns = [
        turn(True, 10, 20),
        turn(True, 12, 22),
        turn(False, None, 5),
        turn(True, None, None, {"type": "x"}),
    ]
    table = rendered(results(turns))
    assert "TTFT p50 / p95 (2 streaming turns)" in table
    assert "latency p50 / p95 (3 turns)" in table


def test_the_ttft_note_appears_only_when_the_sets_differ() -> None:
    mixed = summary_notes(results([turn(True, 10, 20), turn(False, None, 5)]))
    assert mixed == [
        "TTFT is taken over the 1 streaming turn answered, latency over all 2 turns answered (non-streaming "
        "ones too), so TTFT p50 can exceed latency p50."
    ]
    assert summary_notes(results([turn(True, 10, 20), turn(True, 11, 21)])) == []


def test_count_tokens_error_is_explained_and_the_reference_one_too() -> None:
    (note,) = summary_notes(results([turn(True, 10, 20)], count_tokens_error=0.02))
    assert "not scored" in note and "reference" not in note
    (note,) = summary_notes(results([turn(True, 10, 20)], preset="reference", count_tokens_error=0.13))
    assert "the reference backend counts words and punctuation, not tokens, so it is not 0 here" in note


def test_the_reference_smoke_run_prints_both_notes(tmp_path: Path) -> None:
    result = run("--scenarios", str(PROJECT_SCENARIOS), "--suite", "smoke", "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    assert "so TTFT p50 can exceed latency p50." in result.output
    assert "count_tokens error: how far ccbench's count_tokens answer is" in result.output


def test_a_streaming_only_run_has_no_ttft_note(tmp_path: Path) -> None:
    request = {**REQUEST, "stream": True}
    folder = scenario_dir(tmp_path, [{"id": "x", "suite": "s", "request": request, "reference": "hello"}])
    result = run("--scenarios", str(folder), "--out", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    assert "TTFT p50 / p95 (1 streaming turn)" in result.output
    assert "can exceed" not in result.output
