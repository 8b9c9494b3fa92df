"""The "why the turns failed" lines (harness/diagnosis.py): the main failure class first, and the cut-at-max_tokens
line pointing at --max-output-tokens only where that option could change something."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.diagnosis import LONG_BUDGET, diagnose
from harness.report_data import parse_results
from tests.proxy.backend_thread import BackendThread
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks
from tests.report.factory import results, scenario, turn

NO_TOOL_HEAD = "failed turns: the model answered in text where the recorded turn called a tool"


def cut_run(
    output_tokens: int, *, cut: int = 3, failure_class: str = "model_no_tool", cap: int | None = None
):
    """A run whose failing turns answered in text; the first `cut` of them stopped at max_tokens."""
    turns = []
    for index in range(4):
        failing = turn(index, passed=False, failure_class=failure_class)
        failing.update(output_tokens=output_tokens, stop_reason="max_tokens" if index < cut else "end_turn")
        turns.append(failing)
    data = {**results(scenarios=[scenario("smoke-single-tool", turns)])}
    data["run"] = {"concurrency": 4, "timeout_s": 600.0, "max_output_tokens": cap}
    return parse_results(data, "r.json")


def test_turns_cut_at_a_small_max_tokens_do_not_point_at_max_output_tokens() -> None:
    """The smoke suite asks for at most 128 tokens: lowering that cannot help, so the option is not named."""
    lines = diagnose(cut_run(128))
    text = "\n".join(lines)
    assert "3 of 4 failed turns stopped at max_tokens, still writing:" in text
    assert "at most 128 tokens" in text
    assert "--max-output-tokens" not in text
    long = "\n".join(diagnose(cut_run(32_000)))  # Claude Code's requests: a cap bounds such turns
    assert "--max-output-tokens" in long and "rambles or repeats itself" in long
    assert "--max-output-tokens" in "\n".join(diagnose(cut_run(LONG_BUDGET + 1)))


def test_a_cap_the_turns_never_reached_is_not_blamed() -> None:
    """A run capped at 1,000 whose turns stopped at their own 128 tokens was not cut by the cap."""
    text = "\n".join(diagnose(cut_run(128, cap=1000)))
    assert "stopped at max_tokens" in text and "--max-output-tokens" not in text
    capped = "\n".join(diagnose(cut_run(64, cap=64)))
    assert "the run's --max-output-tokens 64 cut them" in capped


def test_the_main_failure_class_leads() -> None:
    """A model that never calls a tool: that is the first thing said, with what to do about it."""
    lines = diagnose(cut_run(128))
    assert lines[0] == f"4 of 4 {NO_TOOL_HEAD}:"
    assert "a model with tool calling" in lines[1] and "llama-server --jinja" in lines[1]
    assert lines[2].startswith("3 of 4 failed turns stopped at max_tokens")
    wrong = "\n".join(diagnose(cut_run(20, cut=0, failure_class="model_wrong_tool")))
    assert "4 of 4 failed turns: the model called a tool the recorded turn did not call" in wrong
    assert NO_TOOL_HEAD not in wrong


def test_turns_with_tool_calls_written_as_text_are_not_counted_twice() -> None:
    """Calls the server left as text have their own line (the server's parser), not the no-tool one."""
    written = turn(0, passed=False, problems=["tool call written as text (<tool_call>): the server …"])
    plain = turn(1, passed=False)
    run = parse_results(results(scenarios=[scenario("s", [written, plain])]), "r.json")
    text = "\n".join(diagnose(run))
    assert "1 of 2 turns without a tool call wrote one as text instead" in text
    assert f"1 of 2 {NO_TOOL_HEAD}:" in text
    only_written = parse_results(results(scenarios=[scenario("s", [written])]), "r.json")
    assert NO_TOOL_HEAD not in "\n".join(diagnose(only_written))


def test_run_compare_and_gate_lead_with_the_model_answering_in_text(tmp_path: Path) -> None:
    """A tiny model on the smoke suite: text until max_tokens on every turn (llama-server's usage counts)."""
    rambling = Reply(
        chunks=chunks_from_blocks(
            [{"type": "text", "text": "Sure! Here is " * 30}], finish_reason="length", usage=(40, 128)
        )
    )
    out = tmp_path / "r.json"
    with BackendThread(FakeBackend(rambling)) as running:
        argv = [
            "run",
            "--backend",
            "llamacpp",
            "--base-url",
            running.url,
            "--suite",
            "smoke",
            "--out",
            str(out),
        ]
        result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    turns = [t for s in json.loads(out.read_text())["scenarios"] for t in s["turns"]]
    no_tool = sum(t["failure_class"] == "model_no_tool" for t in turns)
    failed = sum(not t["passed"] for t in turns)
    assert no_tool and any(t["stop_reason"] == "max_tokens" for t in turns)
    compared = CliRunner().invoke(main, ["compare", str(out)])
    gated = CliRunner().invoke(main, ["gate", "--baseline", str(out), "--candidate", str(out)])
    for output in (result.output, compared.output, gated.output):
        text = " ".join(output.split())
        head = f"{no_tool} of {failed} {NO_TOOL_HEAD}:"
        assert head in text, text
        assert text.index(head) < text.index("stopped at max_tokens, still writing")
        assert "--max-output-tokens" not in text
