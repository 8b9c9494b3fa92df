"""StreamTranslator: one test per upstream quirk, plus the JSON-prefix checker and the invariant checker."""

from __future__ import annotations

import json

import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.translate.invariants import EventChecker, StreamInvariantError
from proxy.translate.jsonprefix import STRING, JsonObjectPrefix
from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator
from tests.proxy.strategies import json_values

SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}
NOARGS = {"type": "object", "properties": {}}


def make(stop_sequences=()):
    ctx = ResponseContext(
        "claude-sonnet-5",
        {"Read": "Read", "Ls": "Ls"},
        {"Read": SCHEMA, "Ls": NOARGS},
        list(stop_sequences),
        "msg_1",
        50,
    )
    return StreamTranslator(ctx)


def chunk(delta=None, finish=None, usage=None, **extra):
    out: dict = {
        "choices": [{"index": 0, "delta": delta if delta is not None else {}, "finish_reason": finish}]
    }
    if usage is not None:
        out["usage"] = usage
    out.update(extra)
    return out


def tc(index, id_=None, name=None, arguments=None):
    fragment: dict = {"index": index}
    if id_:
        fragment["id"] = id_
    function = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        fragment["function"] = function
    return fragment


def run(chunks, translator=None):
    translator = translator or make()
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    events += translator.finish()
    return translator, events


EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def accumulate(events):
    """Every event validated against the SDK's types, then accumulated by the SDK's own code."""
    snapshot, bufs = None, {}
    for event in events:
        if event["type"] not in ("error", "ping"):  # the SDK's SSE layer handles these itself
            parsed = EVENT.validate_python(event)
            snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


def blocks(events):
    return [b.to_dict() for b in accumulate(events).content]


def types(events):
    return [e["type"] for e in events]


def test_start_is_message_start_then_ping():
    events = make().start()
    assert types(events) == ["message_start", "ping"]
    message = events[0]["message"]
    assert (
        message["content"] == [] and message["stop_reason"] is None and message["usage"]["input_tokens"] == 50
    )


def test_content_and_finish_reason_in_one_chunk():
    t, events = run([chunk({"role": "assistant"}), chunk({"content": "Hi"}, "stop")])
    assert blocks(events) == [{"type": "text", "text": "Hi"}]
    assert t.stop_reason == "end_turn"
    assert types(events)[-2:] == ["message_delta", "message_stop"]


def test_usage_only_chunk_after_finish_sets_real_usage():
    usage = {"prompt_tokens": 120, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 100}}
    t, events = run([chunk({"content": "Hi"}), chunk({}, "stop"), {"choices": [], "usage": usage}])
    assert events[-2]["usage"] == {
        "input_tokens": 20,
        "output_tokens": 9,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
    }
    assert t.usage["output_tokens"] == 9


def test_real_llamacpp_final_chunks_with_a_warm_prefix_cache():
    """The last two chunks llama-server (b0, SmolLM2) sent for a repeated prompt, verbatim but the model path."""
    finish = {
        "choices": [{"finish_reason": "stop", "index": 0, "delta": {}}],
        "created": 1795610637,
        "id": "chatcmpl-9D8E",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "system_fingerprint": "b0-unknown",
        "object": "chat.completion.chunk",
    }
    usage = {
        "choices": [],
        "created": 1795610637,
        "id": "chatcmpl-9D8E",
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "system_fingerprint": "b0-unknown",
        "object": "chat.completion.chunk",
        "usage": {
            "completion_tokens": 4,
            "prompt_tokens": 117,
            "total_tokens": 121,
            "prompt_tokens_details": {"cached_tokens": 116},
        },
        "timings": {"cache_n": 116, "prompt_n": 1, "prompt_ms": 68.169, "predicted_n": 4},
    }
    t, events = run([chunk({"role": "assistant", "content": "You're"}), finish, usage], make([" "]))
    assert events[-2]["usage"] == {
        "input_tokens": 1,
        "output_tokens": 4,
        "cache_read_input_tokens": 116,
        "cache_creation_input_tokens": 0,
    }
    assert t.stop_reason == "end_turn"  # llama.cpp strips the stop string and does not say which one matched


def test_usage_on_every_chunk_keeps_the_last():
    chunks = [
        chunk({"content": "a"}, usage={"prompt_tokens": 10, "completion_tokens": 1}),
        chunk({"content": "b"}, "stop", usage={"prompt_tokens": 10, "completion_tokens": 2}),
    ]
    _, events = run(chunks)
    assert events[-2]["usage"]["output_tokens"] == 2


def test_empty_tool_calls_next_to_content_emit_no_tool_block():
    t, events = run([chunk({"content": "Hi", "tool_calls": []}), chunk({}, "stop")])
    assert blocks(events) == [{"type": "text", "text": "Hi"}]
    assert not any(e.get("delta", {}).get("type") == "input_json_delta" for e in events)


def test_name_and_arguments_in_one_chunk():
    t, events = run(
        [chunk({"tool_calls": [tc(0, "call_1", "Read", '{"file_path":"/a"}')]}), chunk({}, "tool_calls")]
    )
    assert blocks(events) == [
        {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"file_path": "/a"}}
    ]
    assert t.stop_reason == "tool_use"


def test_role_only_empty_delta_and_null_content_chunks_emit_nothing():
    t = make()
    t.start()
    assert t.feed(chunk({"role": "assistant"})) == []
    assert t.feed(chunk({})) == []
    assert t.feed(chunk({"content": None})) == []
    assert t.feed({"choices": [{"index": 0, "delta": None}]}) == []


def test_finish_reason_stop_after_tool_calls_is_tool_use():
    t, _ = run([chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]}), chunk({}, "stop")])
    assert t.stop_reason == "tool_use"


def test_finish_without_content_has_zero_blocks():
    t, events = run([chunk({}, "stop")])
    assert types(events) == ["message_start", "ping", "message_delta", "message_stop"]
    assert t.stop_reason == "end_turn"


def test_eof_without_finish_reason():
    t, _ = run([chunk({"content": "x"})])
    assert t.stop_reason == "end_turn"
    t, _ = run([chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]})])
    assert t.stop_reason == "tool_use"


def test_refusal_delta_is_text_with_stop_reason_refusal():
    t, events = run([chunk({"refusal": "No."}), chunk({}, "stop")])
    assert blocks(events) == [{"type": "text", "text": "No."}] and t.stop_reason == "refusal"


def test_length_is_max_tokens():
    t, _ = run([chunk({"content": "x"}, "length")])
    assert t.stop_reason == "max_tokens"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_become_a_thinking_block_with_one_signature(field):
    _, events = run(
        [chunk({field: "hm"}), chunk({field: "m"}), chunk({"content": "\n\nAnswer"}), chunk({}, "stop")]
    )
    result = blocks(events)
    assert result[0]["type"] == "thinking" and result[0]["thinking"] == "hmm" and result[0]["signature"]
    assert result[1] == {"type": "text", "text": "Answer"}
    assert sum(1 for e in events if e.get("delta", {}).get("type") == "signature_delta") == 1


def test_think_tags_split_across_chunks():
    pieces = ["<th", "ink>\nstep one", " and two</th", "ink>\n\nThe", " answer"]
    _, events = run([chunk({"content": p}) for p in pieces] + [chunk({}, "stop")])
    result = blocks(events)
    assert [b["type"] for b in result] == ["thinking", "text"]
    assert result[0]["thinking"] == "step one and two" and result[1]["text"] == "The answer"


def test_text_that_merely_starts_with_angle_bracket_is_text():
    _, events = run([chunk({"content": "<"}), chunk({"content": "b>bold</b>"}), chunk({}, "stop")])
    assert blocks(events) == [{"type": "text", "text": "<b>bold</b>"}]


def test_stop_sequence_from_llamacpp_stopping_word():
    t, events = run([chunk({"content": "abc"}), chunk({}, "stop", stopping_word="END")], make(["END"]))
    assert t.stop_reason == "stop_sequence" and events[-2]["delta"]["stop_sequence"] == "END"


def test_stop_sequence_from_vllm_stop_reason():
    chunks = [
        chunk({"content": "abc"}),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "##"}]},
    ]
    t, _ = run(chunks, make(["##"]))
    assert t.stop_reason == "stop_sequence"


def test_plain_stop_with_stop_sequences_requested_is_end_turn():
    t, events = run([chunk({"content": "abc"}, "stop")], make(["END"]))
    assert t.stop_reason == "end_turn" and events[-2]["delta"]["stop_sequence"] is None


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


def test_fail_emits_one_error_and_ends_the_stream():
    t = make()
    t.start()
    t.feed(chunk({"content": "partial"}))
    events = t.fail("overloaded_error", "backend went away")
    assert events == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "backend went away"}}
    ]
    assert t.done and t.finish() == [] and t.feed(chunk({"content": "x"})) == [] and t.ping() == []


def test_mid_stream_error_chunk_becomes_an_error_event():
    t = make()
    t.start()
    events = t.feed({"error": {"message": "CUDA out of memory", "code": 500}})
    assert events[0]["type"] == "error" and events[0]["error"]["type"] == "api_error"
    assert "CUDA out of memory" in events[0]["error"]["message"] and t.done


def test_mid_stream_context_overflow_error():
    t = make()
    t.start()
    events = t.feed(
        {
            "error": {
                "type": "exceed_context_size_error",
                "code": 400,
                "n_prompt_tokens": 9,
                "n_ctx": 8,
                "message": "too big",
            }
        }
    )
    assert events[0]["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 9 tokens > 8 maximum",
    }


def test_feed_and_finish_without_start_open_the_stream_themselves():
    t = make()
    events = t.feed(chunk({"content": "Hi"})) + t.finish()
    assert types(events)[:2] == ["message_start", "ping"]
    assert blocks(events) == [{"type": "text", "text": "Hi"}]
    assert types(make().finish()) == ["message_start", "ping", "message_delta", "message_stop"]


def test_ping_only_while_streaming():
    t = make()
    assert t.ping() == []
    t.start()
    assert t.ping() == [{"type": "ping"}]


def test_output_text_chars_counts_what_was_streamed():
    t, _ = run([chunk({"content": "abcd"}), chunk({}, "stop")])
    assert t.output_text_chars == 4


# --- invariant checker ----------------------------------------------------------------------------------

START = {
    "type": "message_start",
    "message": {"content": [], "stop_reason": None, "usage": {"input_tokens": 1}},
}


def text_block(index):
    return {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}


@pytest.mark.parametrize(
    "events",
    [
        [{"type": "ping"}],
        [START, START],
        [START, text_block(1)],
        [START, text_block(0), text_block(1)],
        [
            START,
            text_block(0),
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "x"}},
        ],
        [
            START,
            text_block(0),
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
        ],
        [
            START,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
            {"type": "content_block_stop", "index": 0},
        ],
        [
            START,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "a", "name": "b", "input": {}},
            },
            {"type": "content_block_stop", "index": 0},
        ],
        [START, {"type": "message_stop"}],
        [START, {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 1}}],
        [
            START,
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
        ],
        [
            START,
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
            {"type": "message_stop"},
            {"type": "ping"},
        ],
        [START, {"type": "error", "error": {}}, {"type": "ping"}],
    ],
)
def test_invariant_checker_rejects_bad_sequences(events):
    checker = EventChecker()
    with pytest.raises(StreamInvariantError):
        for event in events:
            checker.check(event)


# --- JSON prefix checker --------------------------------------------------------------------------------

json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)


@settings(max_examples=50, deadline=None)
@given(json_objects, st.booleans())
def test_every_prefix_of_a_json_object_is_accepted_and_closable(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only, indent=1 if ascii_only else None)
    for cut in range(len(text) + 1):
        checker = JsonObjectPrefix()
        accepted, rejected = checker.feed(text[:cut])
        assert (accepted, rejected) == (text[:cut], "")
        closed = json.loads(accepted + checker.closing_suffix())
        assert isinstance(closed, dict)
    assert checker.complete


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("[1]", ""),
        ('{"a":1}}', '{"a":1}'),
        ('{"a" 1}', '{"a" '),
        ("{'a':1}", "{"),
        ('{"a":01}', '{"a":0'),
        ('{"a":tru e}', '{"a":tru'),
        ('{"a":"\\x"}', '{"a":"\\'),
    ],
)
def test_prefix_checker_stops_at_the_first_invalid_character(text, accepted):
    checker = JsonObjectPrefix()
    got, rest = checker.feed(text)
    assert got == accepted and got + rest == text and checker.broken


@settings(max_examples=60, deadline=None)
@given(json_objects, st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40))
def test_any_chunking_of_arguments_gives_the_same_input(value, sizes):
    arguments = json.dumps(value)
    pieces, pos, i = [], 0, 0
    while pos < len(arguments):
        size = sizes[i % len(sizes)]
        pieces.append(arguments[pos : pos + size])
        pos, i = pos + size, i + 1
    chunks = [chunk({"tool_calls": [tc(0, "c1", "Ls", "")]})] + [
        chunk({"tool_calls": [tc(0, arguments=p)]}) for p in pieces
    ]
    t, events = run(chunks + [chunk({}, "tool_calls")])
    assert blocks(events)[0]["input"] == value
    assert t.problems == []


@settings(max_examples=60, deadline=None)
@given(json_objects, st.booleans())
def test_continuation_completes_any_prefix_to_the_target(value, spaced):
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": ") if spaced else (",", ":"))
    for cut in range(len(text) + 1):
        checker = JsonObjectPrefix()
        checker.feed(text[:cut])
        rest = checker.continuation(value)
        if rest is None:  # only inside a key or a half-written escape
            assert (checker.state == STRING and checker.in_key) or checker.pending_escape
            continue
        assert json.loads(text[:cut] + rest) == value


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


# --- fuzz: any mixture of upstream quirks yields a grammatical stream the SDK accumulates -----------------

fragments = st.one_of(
    st.builds(lambda t: {"content": t}, st.text(max_size=8)),
    st.builds(lambda t: {"reasoning_content": t}, st.text(max_size=8)),
    st.builds(lambda t: {"reasoning": t}, st.text(max_size=8)),
    st.sampled_from(
        [
            {},
            {"role": "assistant"},
            {"content": None},
            {"tool_calls": []},
            {"content": "<think>"},
            {"content": "</think>"},
            {"refusal": "no"},
        ]
    ),
    st.builds(
        lambda i, id_, name, args: {"tool_calls": [tc(i, id_, name, args)]},
        st.sampled_from([0, 1, 2, None]),
        st.sampled_from([None, "c1", "c2", "c3"]),
        st.sampled_from([None, "Read", "Ls", "Unknown"]),
        st.one_of(
            st.none(),
            st.text(alphabet='{}[]":,ab 1\\n', max_size=6),
            st.sampled_from(['{"file_path":"/x"}', "{}"]),
        ),
    ),
)
chunks_strategy = st.lists(
    st.builds(
        lambda delta, finish, usage: chunk(delta, finish, usage),
        fragments,
        st.sampled_from([None, None, None, "stop", "length", "tool_calls", "content_filter"]),
        st.sampled_from([None, None, {"prompt_tokens": 9, "completion_tokens": 3}]),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(chunks_strategy)
def test_any_upstream_chunk_sequence_gives_a_valid_stream(chunks):
    t, events = run(chunks)  # EventChecker raises on any grammar violation
    message = accumulate(events)
    assert message.stop_reason == t.stop_reason
    for block in message.content:
        if block.type == "tool_use":
            assert isinstance(block.input, dict) and block.name and block.id
    if t.stop_reason == "tool_use":
        assert any(b.type == "tool_use" for b in message.content)
    elif t.stop_reason != "max_tokens":
        assert not any(b.type == "tool_use" for b in message.content)
