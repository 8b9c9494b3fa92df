"""Tool calls written as text (the server's tool parser is off) are told apart from a model that did not try."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report_data import parse_results
from harness.scenarios import Expectation, Turn
from harness.scoring import score_messages_turn
from harness.text_tool_calls import count_text_tool_calls, text_tool_call_lines
from proxy.translate.textcalls import PROBLEM_PREFIX, text_tool_call
from tests.harness.test_scoring import answer
from tests.proxy.backend_thread import BackendThread
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks

OFFERED = {"Read", "Bash"}
HERMES = '<tool_call>\n{"name": "Read", "arguments": {"file_path": "/w/a.py"}}\n</tool_call>'


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (HERMES, "<tool_call>"),
        ('Let me look.\n[TOOL_CALLS][{"name": "Read", "arguments": {}}]', "[TOOL_CALLS]"),
        ('<|python_tag|>{"name": "Bash", "parameters": {"command": "ls"}}', "<|python_tag|>"),
        ("<function=Read>\n<parameter=file_path>a.py</parameter>\n</function>", "<function="),
        ('```json\n{"name": "Bash", "arguments": {"command": "ls"}}\n```', '{"name": "Bash", …}'),
        ('{"function": "Read", "parameters": {"file_path": "x"}}', '{"name": "Read", …}'),
    ],
)
def test_tool_call_syntaxes_in_text_are_found(text, found):
    assert text_tool_call(text, OFFERED) == found


@pytest.mark.parametrize(
    "text",
    [
        "I will read the file first.",
        '{"name": "Alice", "arguments": "none"}',  # JSON naming no offered tool: a model quoting data
        'the config has "name": "Read" in it',
        "",
    ],
)
def test_plain_text_and_quoted_json_are_not_tool_calls(text):
    assert text_tool_call(text, OFFERED) is None


def views(*turns: dict) -> list:
    """Scored turn entries as the report's TurnViews (what the diagnosis reads)."""
    results = {"schema_version": 1, "summary": {}, "scenarios": [{"id": "s", "turns": list(turns)}]}
    return parse_results(results, "test").scenarios[0].turns


TOOLS = [
    {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}},
    {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
]


def test_the_scorer_notes_it_on_a_tool_turn_and_keeps_the_failure_class():
    request = {"max_tokens": 10, "messages": [{"role": "user", "content": "read a.py"}], "tools": TOOLS}
    turn = Turn(index=0, request=request, reference=None, expect=Expectation(tools=["Read"]))
    written = score_messages_turn(
        turn, answer({"type": "text", "text": HERMES}, stop_reason="end_turn"), stream=True, repeat=0
    )
    silent = score_messages_turn(
        turn,
        answer({"type": "text", "text": "Sure, reading it now."}, stop_reason="end_turn"),
        stream=True,
        repeat=0,
    )
    assert written["failure_class"] == silent["failure_class"] == "model_no_tool"  # the contract's classes
    noted = [p for p in written["problems"] if p.startswith(PROBLEM_PREFIX)]
    assert len(noted) == 1 and noted[0].startswith(
        f"{PROBLEM_PREFIX} (<tool_call>): the server did not parse"
    )
    assert "--enable-auto-tool-choice" in noted[0]
    assert not any(p.startswith(PROBLEM_PREFIX) for p in silent["problems"])
    turns = views(written, silent)
    assert count_text_tool_calls(turns) == (1, 2)
    assert text_tool_call_lines(turns)[0] == "1 of 2 turns without a tool call wrote one as text instead:"
    assert text_tool_call_lines(views(silent)) == []


def test_run_against_a_server_without_its_tool_parser_says_which_flag_is_missing(tmp_path):
    """vLLM started without --enable-auto-tool-choice streams the model's `<tool_call>` as content."""
    backend = FakeBackend(Reply(chunks=chunks_from_blocks([{"type": "text", "text": HERMES}])))
    out = tmp_path / "r.json"
    with BackendThread(backend) as running:
        args = ["run", "--backend", "vllm", "--base-url", running.url, "--suite", "smoke", "--out", str(out)]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    run = parse_results(json.loads(out.read_text()), str(out))
    written, no_tool = count_text_tool_calls(t for s in run.scenarios for t in s.turns)
    assert no_tool > 0 and written == no_tool
    assert f"{written} of {no_tool} turns without a tool call wrote one as text instead" in result.output
    assert "--enable-auto-tool-choice --tool-call-parser" in result.output
