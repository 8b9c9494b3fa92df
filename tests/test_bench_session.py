"""The long session the benchmark measures (bench/session.py): a real captured turn grown into a history the
proxy translates as it would a real one."""

from __future__ import annotations

import copy

from bench.report import long_session_check
from bench.session import describe, grown_turns, read_result
from bench.targets import direct_bodies, load_requests, long_session_rows
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.validate import validate_messages_request
from tests.test_bench_report import level


def test_the_turns_grow_one_history_two_messages_at_a_time_from_the_longest_captured_turn() -> None:
    rows = load_requests()
    captured = max(rows, key=lambda row: len(row["body"]["messages"]))
    before = copy.deepcopy(rows)
    turns = long_session_rows(rows, 101)
    assert rows == before  # the captured rows are not written to
    counts = [len(turn["body"]["messages"]) for turn in turns]
    assert counts == [counts[-1] - 4, counts[-1] - 2, counts[-1]] and counts[-1] >= 101
    longest = turns[-1]["body"]["messages"]
    assert longest[: len(captured["body"]["messages"])] == captured["body"]["messages"]
    for turn in turns:
        assert turn["body"]["messages"] == longest[: len(turn["body"]["messages"])]
        assert list(turn["body"]) == list(captured["body"])  # Claude Code's member order, model first
        assert {k: v for k, v in turn["body"].items() if k != "messages"} == {
            k: v for k, v in captured["body"].items() if k != "messages"
        }
    assert describe(turns).startswith(f"{counts[-1]} messages, ")


def test_every_grown_call_is_answered_by_its_result_in_the_translation() -> None:
    (turn,) = grown_turns(load_requests()[1], 40, turns=1)
    body = validate_messages_request(copy.deepcopy(turn["body"]))
    messages = translate_request(body, "m", BackendProfile()).body["messages"]
    calls = [call["id"] for m in messages for call in m.get("tool_calls", [])]
    answered = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert calls == answered and len(calls) >= 18  # the captured turn's 3 and the grown ones
    results = [m["content"] for m in messages if m["role"] == "tool"][-3:]
    assert all(text.startswith("     1\t") and text.endswith("\n") for text in results)
    assert len(direct_bodies([turn])) == 1


def test_read_results_vary_in_length_like_files_do() -> None:
    lengths = {len(read_result(index).splitlines()) for index in range(23)}
    assert min(lengths) == 4 and max(lengths) == 26 and len(lengths) == 23


def test_the_long_session_line_compares_with_direct_and_the_captured_turns_cpu() -> None:
    short, direct, long = (
        level("ccbench", [1600.0]),
        level("direct-long", [2800.0]),
        level("ccbench-long", [620.0]),
    )
    short.server_cpu_ms_per_request, long.server_cpu_ms_per_request = 0.5, 1.6
    (check,) = long_session_check([level("direct", [8000.0]), short, direct, long], "300 messages, 189 KB")
    assert check.name == "long_session_ratio" and check.value == 0.221 and check.passed is None
    assert check.line == (
        "16 concurrent, a turn late in a long session (300 messages, 189 KB): proxy = 0.221 × direct "
        "at 1.60 ms CPU/request (0.50 ms on the captured turns)"
    )
    assert long_session_check([level("direct", [8000.0]), short, long], "x") == []  # no direct row
