"""StreamTranslator and tool calls: parallel and interleaved calls, ids and names, argument fragments that
repeat, break or stop short, and what streams around them."""

from __future__ import annotations

import json

import pytest

from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator
from tests.proxy.stream_helpers import blocks, chunk, run, tc


def test_parallel_calls_by_index_stream_in_order():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_')]}),
        chunk({"tool_calls": [tc(0, arguments='path":"/a"}')]}),
        chunk({"tool_calls": [tc(1, "c2", "Read", '{"file_path":')]}),
        chunk({"tool_calls": [tc(1, arguments='"/b"}')]}),
        chunk({}, "tool_calls"),
    ]
    t, events = run(chunks)
    assert [(b["id"], b["input"]) for b in blocks(events)] == [
        ("c1", {"file_path": "/a"}),
        ("c2", {"file_path": "/b"}),
    ]
    partials = [
        e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert partials[:2] == ['{"file_', 'path":"/a"}']  # forwarded as they arrived


def test_interleaved_calls_are_buffered_until_the_open_one_closes():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":')]}),
        chunk({"tool_calls": [tc(1, "c2", "Read", '{"file_path":"/b"}')]}),
        chunk({"tool_calls": [tc(0, arguments='"/a"}')]}),
        chunk({}, "tool_calls"),
    ]
    t, events = run(chunks)
    assert [(b["id"], b["input"]) for b in blocks(events)] == [
        ("c1", {"file_path": "/a"}),
        ("c2", {"file_path": "/b"}),
    ]
    assert t.problems == []


def test_ollama_style_new_id_on_index_zero_is_a_new_call():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]}),
        chunk({"tool_calls": [tc(0, "c2", "Read", '{"file_path":"/b"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, events = run(chunks)
    assert [b["id"] for b in blocks(events)] == ["c1", "c2"]


def test_repeated_id_and_name_are_not_concatenated():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", "")]}),
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, events = run(chunks)
    assert blocks(events) == [{"type": "tool_use", "id": "c1", "name": "Read", "input": {"file_path": "/a"}}]


def test_cumulative_argument_snapshots_are_not_doubled():
    pieces = ['{"file_', '{"file_path":"/a', '{"file_path":"/a"}']
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Read", p)]}) for p in pieces])
    assert blocks(events)[0]["input"] == {"file_path": "/a"} and t.problems == []


@pytest.mark.parametrize(
    "pieces",
    [
        ['{"command":', '{"command":"l', '{"command":"ls"}'],  # each snapshot also valid appended
        ['{"command": ', '{"command": "ls"}'],
        ['{"todos":[', '{"todos":[{"content":"a"}]}'],
    ],
)
def test_snapshots_that_end_after_a_colon_or_bracket_are_not_nested(pieces):
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Bash", p)]}) for p in pieces] + [chunk({}, "stop")])
    assert blocks(events)[0]["input"] == json.loads(pieces[-1])
    assert t.problems == []


def test_a_fragment_that_legitimately_repeats_the_prefix_is_appended():
    pieces = ['{"": ', '{"": 1}}']
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Ls", p)]}) for p in pieces])
    assert blocks(events)[0]["input"] == {"": {"": 1}}


def test_call_without_id_gets_one():
    _, events = run(
        [chunk({"tool_calls": [tc(0, None, "Read", '{"file_path":"/a"}')]}), chunk({}, "tool_calls")]
    )
    assert blocks(events)[0]["id"].startswith("toolu_")


def test_empty_arguments_emit_an_explicit_empty_object():
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Ls", "")]}), chunk({}, "tool_calls")])
    assert blocks(events)[0]["input"] == {}
    assert any(e.get("delta", {}).get("partial_json") == "{}" for e in events)
    assert t.problems == []
    t, _ = run([chunk({"tool_calls": [tc(0, "c1", "Read", "")]}), chunk({}, "tool_calls")])
    assert any("lacks required properties ['file_path']" in p for p in t.problems)


def test_raw_newline_inside_a_string_is_escaped_on_the_fly():
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"a\nb"}')]})])
    assert blocks(events)[0]["input"] == {"file_path": "a\nb"}


def test_trailing_garbage_after_complete_arguments_is_ignored_and_reported():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path": "/a"')]}),
        chunk({"tool_calls": [tc(0, arguments="}}")]}),
        chunk({}, "tool_calls"),
    ]
    t, events = run(chunks)
    assert blocks(events)[0]["input"] == {"file_path": "/a"}
    assert any("ignored trailing text '}'" in p for p in t.problems)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (
            ['{"command": "ls", "description": ', "'List files'}"],
            {"command": "ls", "description": "List files"},
        ),
        (['{"a": [1, 2, ', "'x', 3]}"], {"a": [1, 2, "x", 3]}),
        (['{"a": {"b": "hel', 'lo", c: 1}, "d": 2}'], {"a": {"b": "hello", "c": 1}, "d": 2}),
        (['{"a": "x", ', "b: True}"], {"a": "x", "b": True}),
    ],
)
def test_broken_arguments_continue_with_the_repaired_reading(pieces, expected):
    ctx = ResponseContext("m", {"T": "T"}, {"T": {"type": "object"}}, [], "msg_1")
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "T", p)]}) for p in pieces], StreamTranslator(ctx))
    assert blocks(events)[0]["input"] == expected
    partials = [
        e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert partials[0] == pieces[0]  # the valid prefix was streamed before the break
    assert any("repaired" in p for p in t.problems)


def test_unrepairable_break_keeps_the_valid_part_and_reports_it():
    pieces = ['{"file_path": "/a", ', "@@@ ### !!!"]
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Read", p)]}) for p in pieces])
    assert blocks(events)[0]["input"]["file_path"] == "/a"
    assert any("kept the valid part" in p for p in t.problems)


def test_python_style_arguments_after_the_brace_are_repaired():
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Read", "{'file_path': '/a'}")]})])
    assert blocks(events)[0]["input"] == {"file_path": "/a"}
    assert t.problems


def test_truncated_arguments_are_closed_and_reported_and_the_stop_is_max_tokens():
    t, events = run([chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path": "/a/b')]}, "length")])
    assert blocks(events)[0]["input"] == {"file_path": "/a/b"}
    assert any("cut off" in p for p in t.problems)
    assert t.stop_reason == "max_tokens"  # Claude Code must not run a cut-off call


def test_split_unicode_escape_is_never_sent_half_done():
    pieces = ['{"file_path":"caf', "\\u00", 'e9"}']
    _, events = run([chunk({"tool_calls": [tc(0, "c1", "Read", p)]}) for p in pieces])
    partials = [
        e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert "\\u00" not in partials
    assert blocks(events)[0]["input"] == {"file_path": "café"}


def test_text_after_a_tool_call_closes_it_and_opens_text():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]}),
        chunk({"content": "done"}),
        chunk({}, "stop"),
    ]
    _, events = run(chunks)
    assert [b["type"] for b in blocks(events)] == ["tool_use", "text"]


def test_whitespace_between_calls_opens_no_text_block():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]}),
        chunk({"content": "\n"}),
        chunk({"tool_calls": [tc(1, "c2", "Read", '{"file_path":"/b"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, events = run(chunks)
    assert [b["type"] for b in blocks(events)] == ["tool_use", "tool_use"]


def test_call_without_a_name_is_dropped_and_reported():
    t, events = run([chunk({"tool_calls": [tc(0, "c1", None, '{"a":1}')]}), chunk({}, "tool_calls")])
    assert blocks(events) == [] and t.stop_reason == "end_turn"
    assert any("without a function name" in p for p in t.problems)


def test_sanitized_tool_names_map_back():
    ctx = ResponseContext("m", {"mcp_srv_tool_ab12cd34": "mcp/srv.tool"}, {}, [], "msg_1")
    _, events = run(
        [chunk({"tool_calls": [tc(0, "c1", "mcp_srv_tool_ab12cd34", "{}")]})], StreamTranslator(ctx)
    )
    assert blocks(events)[0]["name"] == "mcp/srv.tool"
