"""Chunks that arrive in one network read are merged before translation (`coalesce`): runs that only add answer
text, or only add arguments to one tool call, become one chunk each.

The property that makes this safe: a stream read all at once gives Claude Code the same message (content, stop
reason, usage) as the same stream read one event at a time, as the SDK's own accumulator sees it.
Only the log's notes may differ: a problem repeated for every fragment of a run is named once, and broken
arguments are described as the parser met them.
"""

from __future__ import annotations

import json
import re

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.fast_backend import stream_chunks
from proxy.sse import SSEDecoder, encode_events
from proxy.translate.backend_stream import BackendStream
from proxy.translate.chunks import coalesce, parse_chunk
from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator
from tests.proxy.stream_helpers import SCHEMA, accumulate, chunk, tc
from tests.proxy.test_hostile_chunks import chunks as hostile_chunks


def text(content: str, **delta) -> dict:
    return chunk({"content": content, **delta})


def args(index: int, arguments: str) -> dict:
    return chunk({"tool_calls": [tc(index, arguments=arguments)]})


# -- the merge itself ---------------------------------------------------------------------------------------------


def test_a_run_of_text_chunks_becomes_one_chunk_with_the_joined_text():
    merged = coalesce([text("I'll "), text("read "), text("it.")])
    assert merged == [{"choices": [{"index": 0, "delta": {"content": "I'll read it."}}]}]


def test_a_run_of_argument_fragments_of_one_call_becomes_one_fragment():
    head = chunk({"tool_calls": [tc(0, "call_1", "Read", "")]})
    first = args(0, '{"file')
    merged = coalesce([head, first, args(0, '_path": '), args(0, '"/a'), args(0, '"}')])
    assert merged[0] is head  # the name and id travel in their own chunk, untouched
    assert merged[1] is first  # so does the text that opens the arguments (it may be a snapshot, below)
    assert merged[2:] == [chunk_with_arguments(0, '_path": "/a"}')]


def test_fragments_that_may_be_snapshots_are_never_merged():
    """Some servers send all the arguments so far in every fragment; ToolCallBuffer spots each one as such.
    Joined, `{"a"` + `{"a": 1}` would be one broken text instead of two snapshots."""
    snapshots = [args(0, '{"file_path"'), args(0, '{"file_path": "/a"'), args(0, '{"file_path": "/a"}')]
    assert coalesce(snapshots) == snapshots
    assert coalesce([args(0, " "), args(0, "\n"), args(0, '  {"a"')]) == [
        args(0, " "),
        args(0, "\n"),
        args(0, '  {"a"'),
    ]
    head = chunk({"tool_calls": [tc(0, "call_1", "Read", "")]})
    together = assert_same_message([head, *snapshots, chunk({}, finish="tool_calls")])
    assert accumulate(together).content[0].input == {"file_path": "/a"}


def chunk_with_arguments(index: int, arguments: str) -> dict:
    call = {"index": index, "function": {"arguments": arguments}}
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}


def test_runs_break_at_another_call_at_text_and_at_anything_else():
    finish = chunk({}, finish="stop")
    items = [
        args(0, '"x'),
        args(1, '"y'),
        args(1, '"'),
        text("a"),
        args(0, '"'),
        finish,
        text("b"),
        text("c"),
    ]
    merged = coalesce(items)
    assert merged[0] is items[0]
    assert merged[1] == chunk_with_arguments(1, '"y"')
    assert merged[2:5] == items[3:6]
    assert merged[5] == {"choices": [{"index": 0, "delta": {"content": "bc"}}]}


@pytest.mark.parametrize(
    "other",
    [
        chunk({"content": "x"}, finish="stop"),  # carries the finish
        chunk({"content": "x"}, usage={"prompt_tokens": 1}),  # carries usage
        chunk({"content": "x", "reasoning_content": "hm"}),  # two fields
        chunk({"reasoning_content": "hm"}),  # reasoning: not merged
        chunk({"content": [{"type": "text", "text": "x"}]}),  # content as parts
        chunk({"tool_calls": [tc(0, arguments="x"), tc(1, arguments="x")]}),  # two calls
        chunk({"tool_calls": [tc(0, name="Read", arguments="x")]}),  # a name
        chunk({"tool_calls": [tc(0, "call_9", arguments="x")]}),  # an id
        chunk({"tool_calls": [{"function": {"arguments": "x"}}]}),  # no index
        chunk({"tool_calls": [tc(-1, arguments="x")]}),  # an index no call has
        chunk({"tool_calls": [tc(True, arguments="x")]}),  # a bool is no index
        chunk({"tool_calls": [tc(0, arguments={"a": 1})]}),  # arguments as an object
        {"choices": [{"index": 1, "delta": {"content": "x"}}]},  # another choice
        {"choices": [text("x")["choices"][0], text("y")["choices"][0]]},  # two choices
        {"choices": [{"index": 0, "delta": {"content": "x"}}], "stopping_word": "</s>"},
        {"choices": [{"index": 0, "delta": {"content": "x"}}], "id": "c", "model": "m"},  # parsed in full
        "not a chunk",
    ],
)
def test_chunks_that_carry_more_than_a_fragment_stay_as_they_are(other):
    items = [text("a"), other, text("b")]
    assert coalesce(items) == items
    if isinstance(other, dict):
        assert coalesce([other, other]) == [other, other]


def test_fields_sent_as_null_do_not_stop_a_merge():
    vllm_style = text("a", reasoning_content=None, tool_calls=None)
    assert coalesce([vllm_style, text("b")]) == [{"choices": [{"index": 0, "delta": {"content": "ab"}}]}]
    assert coalesce([{**text("a"), "usage": None}, text("b")])[0]["choices"][0]["delta"] == {"content": "ab"}


def test_argument_fragments_with_null_fields_and_a_type_still_merge():
    """SGLang-style fragments repeat `type` and send `id` and `name` as null; the translator reads neither."""
    sglang = {"index": 0, "id": None, "type": "function", "function": {"name": None, "arguments": '"a'}}
    merged = coalesce([chunk({"tool_calls": [sglang]}), args(0, '"}')])
    assert merged == [chunk_with_arguments(0, '"a"}')]
    named = {**sglang, "function": {"name": "Read", "arguments": '"a'}}
    assert coalesce([chunk({"tool_calls": [named]}), args(0, "}")])[0] == chunk({"tool_calls": [named]})


def test_one_chunk_per_read_passes_through_untouched():
    single = [text("a")]
    assert coalesce(single) is single
    lone = text("a")
    assert coalesce([lone, chunk({}, finish="stop")])[0] is lone


# -- the same message either way ----------------------------------------------------------------------------------

READ = {"Read": SCHEMA, "Edit": {"type": "object", "properties": {"path": {"type": "string"}}}}


def translate_reads(reads: list[bytes], prefill: str = "") -> tuple[StreamTranslator, list[dict]]:
    """The relay's per-read path for these reads, then the end of the body."""
    ctx = ResponseContext(
        "claude", {"Read": "Read", "Edit": "Edit"}, READ, ["STOP"], "msg_x", 10, prefill=prefill
    )
    translator = StreamTranslator(ctx)
    stream = BackendStream(translator)
    events = translator.start()
    for data in reads:
        events += stream.feed(data)
        if stream.done or translator.done:
            break
    else:
        events += stream.end_of_body()
    return translator, events


def outcome(translator: StreamTranslator, events: list[dict]) -> dict:
    encode_events(events)  # what the relay writes must encode
    if events[-1]["type"] == "error":
        return {"error": events[-1]["error"]}
    message = accumulate(events)
    return {
        "content": [without_made_up_id(block.to_dict()) for block in message.content],
        "stop_reason": message.stop_reason,
        "stop_sequence": message.stop_sequence,
        "usage": message.usage.to_dict(),
    }


def without_made_up_id(block: dict) -> dict:
    """A tool_use whose backend gave no usable id gets a random one, different on every run."""
    if re.fullmatch(r"toolu_[0-9a-f]{24}", block.get("id", "")):
        return {**block, "id": "made up"}
    return block


def as_events(items: list[object]) -> list[bytes]:
    return [b"data: " + json.dumps(item).encode() + b"\n\n" for item in items] + [b"data: [DONE]\n\n"]


def assert_same_message(items: list[object], prefill: str = "") -> list[dict]:
    events = as_events(items)
    one_by_one = outcome(*translate_reads(events, prefill))
    translator, together_events = translate_reads([b"".join(events)], prefill)
    assert outcome(translator, together_events) == one_by_one
    return together_events


def test_the_benchmark_answer_is_the_same_message_in_fewer_events():
    events = as_events(stream_chunks())
    _, separately = translate_reads(events)
    together = assert_same_message(stream_chunks())
    deltas = [event for event in together if event["type"] == "content_block_delta"]
    assert len(deltas) < len([event for event in separately if event["type"] == "content_block_delta"])
    assert deltas[0]["delta"] == {"type": "text_delta", "text": "I'll read the file first to see it."}
    assert translate_reads([b"".join(events)])[0].problems == []


fragment_text = st.text(alphabet=' ab<>/thinkSTOP{}":,\n', max_size=8)
well_formed = st.one_of(
    st.builds(text, fragment_text),
    st.builds(lambda r: chunk({"reasoning_content": r}), fragment_text),
    st.builds(
        lambda i, n, a: chunk({"tool_calls": [tc(i, f"call_{i}", n, a)]}),
        st.integers(0, 1),
        st.sampled_from(["Read", "Edit", "Nope"]),
        st.sampled_from(["", "{", '{"file_path": "/a"}']),
    ),
    st.builds(
        args,
        st.integers(0, 1),
        st.sampled_from(
            [
                "{",
                '"file_path"',
                ": ",
                '"/a"',
                "}",
                " ",
                "x",
                '{"path":"b"}',
                '{"file_path"',
                '{"file_path": "/a"}',
            ]
        ),
    ),
    st.builds(
        lambda i, a: chunk(
            {"tool_calls": [{"index": i, "id": None, "type": "function", "function": {"arguments": a}}]}
        ),
        st.integers(0, 1),
        st.sampled_from(['"/b"', "}", " x"]),
    ),
    st.builds(lambda f: chunk({}, finish=f), st.sampled_from(["stop", "tool_calls", "length"])),
    st.just(chunk({}, usage={"prompt_tokens": 7, "completion_tokens": 3})),
)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(well_formed, max_size=16), st.sampled_from(["", "I'll", "{"]))
@example([text(" "), text("\n"), text("Hi"), text(" there")], "")
@example([args(0, '{"file_path"'), args(0, ': "/a"}')], "")
@example([text("I'"), text("ll go")], "I'll")
@example([text("<thi"), text("nk>hm</th"), text("ink>ok")], "")
@example([text("say ST"), text("OP")], "")
def test_one_read_or_many_gives_the_same_message(items, prefill):
    assert_same_message(items, prefill)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_chunks, max_size=8))
def test_one_read_or_many_gives_the_same_message_for_any_chunks(items):
    assert_same_message(items)


def test_chunks_parsed_by_the_relay_merge_like_the_ones_built_here():
    """The merge sees what parse_chunk gives (msgspec drops `id`, `role`, `logprobs`…), not the raw JSON."""
    raw = [orjson.dumps(item) for item in stream_chunks()]
    merged = coalesce([parse_chunk(data) for data in raw])
    # the text (the role chunk's empty content joins it), the call's head, the opening text of its arguments, the
    # rest of them, the finish, the usage
    assert len(merged) == 6
    decoder = SSEDecoder()
    assert len(decoder.feed_raw(b"".join(b"data: " + data + b"\n\n" for data in raw))) == len(raw)
