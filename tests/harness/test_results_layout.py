"""The results file as an outside checker sees it: `scenarios[].turns[]` holds exactly the messages turns the
summary counts, and count_tokens calls live in `scenarios[].count_tokens[]`.

The checker below knows DESIGN section 5 only (no `kind`, no extensions) and runs as `python -c`, as a CI job
written from the design document would: it must agree with the summary of a real `ccbench run`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.results import contract_problems
from tests.support import COUNT_TOKENS_CALL_FIELDS

# Recomputes the DESIGN section 5 summary from scenarios[].turns[] alone; prints the numbers as JSON.
DESIGN_CHECKER = """
import json, math, sys
data = json.load(open(sys.argv[1]))
turns = [t for s in data["scenarios"] for t in s["turns"]]
def rate(hits, n): return hits / n if n else None
def pct(values, p):
    values = sorted(values)
    return values[max(1, math.ceil(p / 100 * len(values))) - 1] if values else None
answered = [t for t in turns if t.get("error") is None]
ttfts = [t["ttft_ms"] for t in answered if t["ttft_ms"] is not None]
latencies = [t["latency_ms"] for t in answered if t["latency_ms"] is not None]
tools = [t["tool_call_success"] for t in turns if t["tool_call_success"] is not None]
print(json.dumps({
    "turns": len(turns),
    "schema_validity": rate(sum(t["schema_valid"] for t in turns), len(turns)),
    "tool_call_success": rate(sum(tools), len(tools)),
    "ttft_ms": {"p50": pct(ttfts, 50), "p95": pct(ttfts, 95)},
    "latency_ms": {"p50": pct(latencies, 50), "p95": pct(latencies, 95)},
}))
"""

COUNT_TOKENS_FIELDS = set(COUNT_TOKENS_CALL_FIELDS)


@pytest.fixture(scope="module", params=[["--suite", "smoke"], []], ids=["smoke", "full"])
def written(request, tmp_path_factory) -> Path:
    """A real `ccbench run` (reference backend) of the smoke suite or of every suite, written with --out."""
    out = tmp_path_factory.mktemp("run") / "results.json"
    result = CliRunner().invoke(main, ["run", *request.param, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_design_only_checker_agrees_with_the_summary(written: Path) -> None:
    checked = subprocess.run(
        [sys.executable, "-c", DESIGN_CHECKER, str(written)], capture_output=True, text=True, check=True
    )
    recomputed = json.loads(checked.stdout)
    summary = json.loads(written.read_text())["summary"]
    assert summary["errors"] == 0  # the checker's answered-turn filter is then the summary's
    assert recomputed == {key: summary[key] for key in recomputed}


def test_turns_hold_messages_turns_and_count_tokens_calls_have_their_own_list(written: Path) -> None:
    data = json.loads(written.read_text())
    assert contract_problems(data) == []
    turns = [t for s in data["scenarios"] for t in s["turns"]]
    calls = [c for s in data["scenarios"] for c in s["count_tokens"]]
    assert {t["kind"] for t in turns} == {"messages"}
    assert len(turns) == data["summary"]["turns"]
    assert len(calls) == 1  # smoke-count-tokens, in either run
    (call,) = calls
    assert set(call) == COUNT_TOKENS_FIELDS
    assert call["input_tokens"] > 0 and call["backend_prompt_tokens"] > 0
    summary = data["summary"]
    assert summary["count_tokens_validity"] == 1.0
    assert summary["count_tokens_error"] == pytest.approx(call["count_tokens_error"])
    assert all(isinstance(s["count_tokens"], list) for s in data["scenarios"])
