"""StreamTranslator: one test per upstream quirk (text, reasoning, stops, usage, errors), and a fuzz test
that any mixture of quirks gives a stream the SDK accumulates. Tool calls: test_stream_tool_calls.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.proxy.stream_helpers import accumulate, blocks, chunk, make, run, tc, types


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
