"""Text or reasoning that arrives in the middle of a tool call's arguments (wire audit finding 2).

Closing the call there sent `{"command":"l"}` for `ls` and Claude Code ran it. The call stays open until its
arguments are complete; what arrived inside it follows as its own block, in its order.
"""

from __future__ import annotations

import pytest

from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator
from tests.proxy.stream_helpers import accumulate, blocks, chunk, run, tc

BASH = {
    "type": "object",
    "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}},
    "required": ["command"],
}


def translator() -> StreamTranslator:
    ctx = ResponseContext("claude-sonnet-5", {"Bash": "Bash"}, {"Bash": BASH}, [], "msg_1", 10)
    return StreamTranslator(ctx)


def summary(content: list[dict]) -> list[tuple[str, object]]:
    return [(b["type"], b.get("input", b.get("text", b.get("thinking")))) for b in content]


@pytest.mark.parametrize(
    ("interleaved", "kind"),
    [
        ({"content": "."}, "text"),
        ({"reasoning_content": "hmm"}, "thinking"),
        ({"reasoning": "hmm"}, "thinking"),
    ],
)
def test_a_delta_inside_the_arguments_does_not_cut_the_call(interleaved, kind):
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Bash", '{"command":"l')]}),
        chunk(interleaved),
        chunk({"tool_calls": [tc(0, None, None, 's","timeout":5}')]}),
        chunk({}, "tool_calls"),
    ]
    t, events = run(chunks, translator())
    content = blocks(events)
    assert content[0] == {
        "type": "tool_use",
        "id": "c1",
        "name": "Bash",
        "input": {"command": "ls", "timeout": 5},
    }
    assert [b["type"] for b in content[1:]] == [kind]
    assert accumulate(events).stop_reason == "tool_use"
    assert not any("cut off" in p or "repaired" in p for p in t.problems)


def test_several_pieces_inside_the_call_keep_their_order():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Bash", '{"command":')]}),
        chunk({"reasoning_content": "think"}),
        chunk({"content": "Hello"}),
        chunk({"content": " world"}),
        chunk({"tool_calls": [tc(0, None, None, '"ls"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, events = run(chunks, translator())
    assert summary(blocks(events)) == [
        ("tool_use", {"command": "ls"}),
        ("thinking", "think"),
        ("text", "Hello world"),
    ]


def test_text_inside_the_call_goes_before_a_call_that_waits_behind_it():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Bash", '{"command":"l')]}),
        chunk({"content": "note"}),
        chunk({"tool_calls": [tc(1, "c2", "Bash", '{"command":"pwd"}')]}),
        chunk({"tool_calls": [tc(0, None, None, 's"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, events = run(chunks, translator())
    assert summary(blocks(events)) == [
        ("tool_use", {"command": "ls"}),
        ("text", "note"),
        ("tool_use", {"command": "pwd"}),
    ]


def test_a_call_that_never_finishes_is_closed_at_the_end_and_the_text_follows():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Bash", '{"command":"l')]}),
        chunk({"content": "oops"}),
        chunk({}, "length"),
    ]
    t, events = run(chunks, translator())
    assert summary(blocks(events)) == [("tool_use", {"command": "l"}), ("text", "oops")]
    assert accumulate(events).stop_reason == "max_tokens"  # a cut call is never run
    assert any("cut off" in p for p in t.problems)


def test_text_after_complete_arguments_still_follows_at_once():
    t = translator()
    events = t.start() + t.feed(chunk({"tool_calls": [tc(0, "c1", "Bash", '{"command":"ls"}')]}))
    events += t.feed(chunk({"content": "done"}))
    assert [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"][-1] == "text_delta"
