"""OpenAI completion -> Anthropic Message, and backend errors -> Anthropic errors."""

from __future__ import annotations

import json

import pytest

from proxy.errors import AnthropicError
from proxy.translate.response import ResponseContext, backend_error_to_anthropic, completion_to_message

SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}


def ctx(stop_sequences=(), tool_names=None):
    names = tool_names or {"Read": "Read"}
    return ResponseContext(
        "claude-sonnet-5", names, {"Read": SCHEMA, "mcp.x": SCHEMA}, list(stop_sequences), "msg_abc", 77
    )


def completion(message, finish_reason="stop", usage=None, **choice_extra):
    out = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish_reason,
                **choice_extra,
            }
        ]
    }
    if usage is not None:
        out["usage"] = usage
    return out


def call(arguments, name="Read", id_="call_1"):
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_plain_text_message_has_every_field():
    message = completion_to_message(
        completion({"content": "Hello"}, usage={"prompt_tokens": 10, "completion_tokens": 2}), ctx()
    )
    assert message == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 2,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def test_cached_tokens_are_split_out_of_input():
    usage = {"prompt_tokens": 1000, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 900}}
    message = completion_to_message(completion({"content": "x"}, usage=usage), ctx())
    assert message["usage"]["input_tokens"] == 100 and message["usage"]["cache_read_input_tokens"] == 900


def test_missing_usage_falls_back_to_the_estimate():
    message = completion_to_message(completion({"content": "x" * 40}), ctx())
    assert message["usage"]["input_tokens"] == 77 and message["usage"]["output_tokens"] == 10


@pytest.mark.parametrize(
    "message",
    [
        {"content": None, "tool_calls": [call('{"file_path":"/tmp/a/long/path.txt"}')]},
        {
            "content": "hi",
            "reasoning_content": "thinking it over",
            "tool_calls": [call('{"file_path":"/b"}')],
        },
        {"content": None, "refusal": "I will not do that."},
    ],
)
def test_missing_usage_estimate_counts_what_the_stream_counts(message):
    """Without usage, a non-streaming answer's output estimate matches the same answer streamed: tool
    arguments, thinking and refusals are output too (a tool call alone was estimated at 0 tokens)."""
    from tests.proxy.stream_helpers import chunk, run, tc

    whole = completion_to_message(
        completion(message, "tool_calls" if "tool_calls" in message else "stop"), ctx()
    )
    delta = {key: value for key, value in message.items() if key != "tool_calls"}
    calls = [
        tc(i, c["id"], c["function"]["name"], c["function"]["arguments"])
        for i, c in enumerate(message.get("tool_calls", []))
    ]
    translator, _ = run([chunk({**delta, **({"tool_calls": calls} if calls else {})})])
    assert whole["usage"]["output_tokens"] > 0
    assert whole["usage"]["output_tokens"] == translator.usage["output_tokens"]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_field_becomes_a_signed_thinking_block_first(field):
    message = completion_to_message(completion({"content": "\n\nAnswer", field: "Let me think"}), ctx())
    thinking, text = message["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "Let me think"
    assert thinking["signature"]
    assert text == {"type": "text", "text": "Answer"}


def test_think_tags_at_the_start_of_content_become_thinking():
    message = completion_to_message(completion({"content": "<think>\nplan\n</think>\n\nDone."}), ctx())
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["thinking"] == "plan" and message["content"][1]["text"] == "Done."


def test_unclosed_think_tag_is_all_thinking():
    message = completion_to_message(
        completion({"content": "<think>still going"}, finish_reason="length"), ctx()
    )
    assert [b["type"] for b in message["content"]] == ["thinking"]
    assert message["stop_reason"] == "max_tokens"


def test_tool_calls_become_tool_use_blocks_with_names_mapped_back():
    names = {"Read": "Read", "mcp_x_1234abcd": "mcp.x"}
    calls = [
        call('{"file_path":"/a"}'),
        call('{"file_path":"/b"}', name="mcp_x_1234abcd", id_="functions.mcp:1"),
    ]
    message = completion_to_message(
        completion({"content": None, "tool_calls": calls}, "tool_calls"), ctx(tool_names=names)
    )
    assert message["stop_reason"] == "tool_use"
    first, second = message["content"]
    assert first == {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"file_path": "/a"}}
    assert second["name"] == "mcp.x" and second["input"] == {"file_path": "/b"}
    assert all(c.isalnum() or c in "_-" for c in second["id"])


def test_tool_calls_cut_by_length_are_max_tokens():
    message = completion_to_message(completion({"tool_calls": [call('{"file_path":"/a"')]}, "length"), ctx())
    assert message["stop_reason"] == "max_tokens"


def test_tool_calls_with_finish_reason_stop_still_mean_tool_use():
    message = completion_to_message(completion({"tool_calls": [call('{"file_path":"/a"}')]}, "stop"), ctx())
    assert message["stop_reason"] == "tool_use"


def test_repairable_arguments_are_repaired_and_reported():
    c = ctx()
    message = completion_to_message(
        completion({"tool_calls": [call("{'file_path': '/a',}")]}, "tool_calls"), c
    )
    assert message["content"][0]["input"] == {"file_path": "/a"}
    assert any("repaired" in p for p in c.problems)


def test_double_encoded_arguments_are_decoded():
    c = ctx()
    message = completion_to_message(
        completion({"tool_calls": [call(json.dumps('{"file_path":"/a"}'))]}, "tool_calls"), c
    )
    assert message["content"][0]["input"] == {"file_path": "/a"}


def test_unrepairable_arguments_become_text_and_end_turn():
    c = ctx()
    message = completion_to_message(completion({"tool_calls": [call("not json at all")]}, "tool_calls"), c)
    assert message["stop_reason"] == "end_turn"
    assert [b["type"] for b in message["content"]] == ["text"]
    assert "invalid JSON" in message["content"][0]["text"]
    assert any("could not be repaired" in p for p in c.problems)


def test_empty_arguments_are_an_empty_input_noted_when_required():
    c = ctx()
    message = completion_to_message(completion({"tool_calls": [call("")]}, "tool_calls"), c)
    assert message["content"][0]["input"] == {}
    assert any("requires ['file_path']" in p for p in c.problems)


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("weird", "end_turn"),
    ],
)
def test_finish_reasons(finish, expected):
    assert completion_to_message(completion({"content": "x"}, finish), ctx())["stop_reason"] == expected


def test_stop_sequence_reported_by_vllm_stop_reason():
    message = completion_to_message(completion({"content": "abc"}, "stop", stop_reason="END"), ctx(["END"]))
    assert message["stop_reason"] == "stop_sequence" and message["stop_sequence"] == "END"


def test_stop_sequence_left_in_text_is_detected_and_stripped():
    message = completion_to_message(completion({"content": "abc###"}), ctx(["###"]))
    assert message["stop_reason"] == "stop_sequence" and message["content"][0]["text"] == "abc"


def test_plain_stop_without_a_match_is_end_turn():
    message = completion_to_message(completion({"content": "abc"}), ctx(["###"]))
    assert message["stop_reason"] == "end_turn" and message["stop_sequence"] is None


@pytest.mark.parametrize(
    "garbage", [[], "x", {}, {"choices": []}, {"choices": ["x"]}, {"choices": [{"message": 3}]}]
)
def test_garbage_completions_are_a_502_api_error(garbage):
    with pytest.raises(AnthropicError) as info:
        completion_to_message(garbage, ctx())
    assert info.value.status == 502 and info.value.error_type == "api_error"


def test_openai_refusal_is_text_with_stop_reason_refusal():
    message = completion_to_message(
        completion({"content": None, "refusal": "I can't help with that."}), ctx()
    )
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"


def test_error_object_with_http_200_is_raised_as_that_error():
    with pytest.raises(AnthropicError) as info:
        completion_to_message({"error": {"message": "rate limited", "code": 429}}, ctx())
    assert (info.value.status, info.value.error_type) == (429, "rate_limit_error")


def test_zero_content_is_legal():
    message = completion_to_message(completion({"content": ""}, "length"), ctx())
    assert message["content"] == [] and message["stop_reason"] == "max_tokens"


# --- backend errors -------------------------------------------------------------------------------------


def err(status, body, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return backend_error_to_anthropic(status, raw, headers or {})


def test_llamacpp_context_overflow():
    e = err(
        400,
        {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 9000,
                "n_ctx": 8192,
            }
        },
    )
    assert (e.status, e.error_type, e.message) == (
        400,
        "invalid_request_error",
        "prompt is too long: 9000 tokens > 8192 maximum",
    )


def test_vllm_context_overflow():
    message = (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
        "(4500 in the messages, 500 in the completion). Please reduce the length of the messages or completion."
    )
    e = err(400, {"object": "error", "message": message, "type": "BadRequestError", "code": 400})
    assert e.message == "prompt is too long: 4500 tokens > 4096 maximum"


def test_vllm_overflow_caused_by_max_tokens_uses_anthropics_max_tokens_wording():
    message = (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
        "(3000 in the messages, 2000 in the completion)."
    )
    e = err(400, {"object": "error", "message": message})
    assert e.status == 400
    assert e.message.startswith("input length and `max_tokens` exceed context limit: 3000 + 2000 > 4096")


@pytest.mark.parametrize(
    "message",
    [
        "The input (5000 tokens) is longer than the model's context length (4096 tokens).",  # SGLang
        "Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with "
        "context length of only 4096 tokens, which is not enough.",  # LM Studio
    ],
)
def test_other_servers_context_overflow_wording(message):
    e = err(400, {"error": {"message": message}})
    assert e.message == "prompt is too long: 5000 tokens > 4096 maximum"


def test_overflow_without_numbers_still_reads_prompt_is_too_long():
    e = err(400, {"error": {"message": "context length exceeded"}})
    assert e.status == 400 and e.message.startswith("prompt is too long: ")


def test_an_ordinary_400_is_not_an_overflow():
    e = err(400, {"error": {"message": "temperature must be between 0 and 2"}})
    assert not e.message.startswith("prompt is too long")


def test_openai_style_error_keeps_a_short_message():
    e = err(400, {"error": {"message": "bad temperature " + "x" * 2000, "type": "invalid_request_error"}})
    assert e.status == 400 and e.error_type == "invalid_request_error"
    assert "bad temperature" in e.message and len(e.message) < 600


def test_429_keeps_retry_after():
    e = err(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})
    assert (e.status, e.error_type, e.headers) == (429, "rate_limit_error", {"retry-after": "7"})


@pytest.mark.parametrize("status", [502, 503])
def test_unavailable_backend_is_overloaded(status):
    e = err(status, b"upstream down", {"retry-after": "3"})
    assert (e.status, e.error_type, e.headers) == (529, "overloaded_error", {"retry-after": "3"})


def test_gateway_timeout_is_timeout_error():
    e = err(504, b"gateway timeout")
    assert (e.status, e.error_type) == (504, "timeout_error")


@pytest.mark.parametrize(("status", "kind"), [(401, "authentication_error"), (403, "permission_error")])
def test_backend_auth_failure_says_it_is_the_proxys_credentials(status, kind):
    e = err(status, {"error": {"message": "Invalid API key"}})
    assert (e.status, e.error_type) == (status, kind)
    assert "backend rejected the proxy's credentials" in e.message


def test_stack_traces_never_leak():
    body = b"Internal error\nTraceback (most recent call last):\n  File \"/srv/app.py\", line 3, in f\nKeyError: 'x'"
    e = err(500, body)
    assert (e.status, e.error_type) == (500, "api_error")
    assert "Traceback" not in e.message and "app.py" not in e.message and "Internal error" in e.message


def test_plain_text_404():
    e = err(404, b"model 'foo' not found")
    assert (e.status, e.error_type) == (404, "not_found_error") and "model 'foo' not found" in e.message
