"""Anthropic request -> OpenAI request: validation, system prompts, user content, sampling and the other
top-level fields. The conversation history and tools: test_translate_history.py."""

from __future__ import annotations

import json

import pytest

from proxy.backend_state import backend_profile
from proxy.config import Config
from proxy.errors import AnthropicError
from proxy.translate.request import (
    BackendProfile,
    validate_messages_request,
)
from tests.proxy.request_helpers import READ_TOOL, assistant, body, tr, user

# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ([], "request body"),
        ({"model": "m", "max_tokens": 1}, "messages"),
        ({"model": "m", "max_tokens": 1, "messages": {}}, "messages"),
        ({"max_tokens": 1, "messages": []}, "model"),
        ({"model": 5, "max_tokens": 1, "messages": []}, "model"),
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": "9", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": True, "messages": []}, "max_tokens"),
        (body(["hi"]), "messages.0"),
        (body([{"role": 7, "content": "x"}]), "messages.0.role"),
        (body([{"role": "user", "content": 7}]), "messages.0.content"),
        (body([user([{"text": "no type"}])]), "messages.0.content.0.type"),
        (body([assistant([{"type": "tool_use", "name": "Read", "input": {}}])]), "messages.0.content.0.id"),
        (body([assistant([{"type": "tool_use", "id": "t", "input": {}}])]), "messages.0.content.0.name"),
        (body([assistant([{"type": "tool_use", "id": "t", "name": "R", "input": "x"}])]), "content.0.input"),
        (body([user([{"type": "tool_result", "content": "x"}])]), "messages.0.content.0.tool_use_id"),
        (
            body([user([{"type": "tool_result", "tool_use_id": "t", "content": 5}])]),
            "messages.0.content.0.content:",
        ),
        (
            body([user("hi"), assistant("ok"), user([{"type": "text", "text": "x"}, {"type": "text"}])]),
            "messages.2.content.1.text:",
        ),
        (
            body(
                [
                    user(
                        [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "text", "text": "a"}, 7],
                            }
                        ]
                    )
                ]
            ),
            "messages.0.content.0.content.1:",
        ),
        (body([user("hi")], tools=["Read"]), "tools.0"),
        (body([user("hi")], tools=[{"name": ""}]), "tools.0.name"),
        (body([user("hi")], tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (body([user("hi")], tool_choice={"type": "tool"}), "tool_choice.name"),
        (body([user("hi")], tool_choice="auto"), "tool_choice"),
    ],
)
def test_invalid_requests_get_a_400_naming_the_field(bad, field):
    with pytest.raises(AnthropicError) as info:
        validate_messages_request(bad)
    assert info.value.status == 400
    assert info.value.error_type == "invalid_request_error"
    assert field in info.value.message


def test_count_tokens_does_not_need_max_tokens():
    assert validate_messages_request({"model": "m", "messages": []}, count_tokens=True)["model"] == "m"


def test_a_message_request_needs_at_least_one_message():
    """Was forwarded to the backend, which answered with an error in its own words (or generated from nothing)."""
    with pytest.raises(AnthropicError, match="messages: at least one message is required"):
        validate_messages_request({"model": "m", "max_tokens": 5, "messages": []})


def test_schema_drift_is_accepted():
    drifted = body(
        [
            user(
                [
                    {
                        "type": "text",
                        "text": "hi",
                        "cache_control": {"type": "ephemeral", "ttl": "1h", "scope": "x"},
                    }
                ]
            ),
            {
                "role": "system",
                "content": [{"type": "text", "text": "reminder", "cache_control": {"type": "ephemeral"}}],
            },
            assistant([{"type": "brand_new_block", "stuff": 1}, {"type": "text", "text": ""}]),
            user([{"type": "text", "text": ""}, {"type": "text", "text": "go"}]),
        ],
        tools=[
            {
                **READ_TOOL,
                "defer_loading": True,
                "eager_input_streaming": True,
                "input_examples": [{}],
                "strict": True,
            }
        ],
        context_management={"edits": []},
        output_config={"effort": "high", "task_budget": {"type": "tokens", "total": 5}},
        thinking={"type": "adaptive", "display": "omitted"},
        some_future_field={"a": 1},
    )
    out = tr(drifted)
    assert "some_future_field" in out.dropped and "context_management" in out.dropped
    assert "brand_new_block" in out.dropped
    assert "some_future_field" not in out.body and "context_management" not in out.body
    assert '"text": ""' not in json.dumps(out.body)  # empty text blocks are dropped


# --- system --------------------------------------------------------------------------------------------


def test_system_blocks_join_and_billing_header_is_dropped():
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=abc123;"},
        {"type": "text", "text": "You are Claude.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief."},
    ]
    out = tr(body([user("hi")], system=system))
    assert out.body["messages"][0] == {"role": "system", "content": "You are Claude.\n\nBe brief."}
    assert "x-anthropic-billing-header" in out.dropped and "cache_control" in out.dropped


def test_system_string_becomes_the_leading_system_message():
    out = tr(body([user("hi")], system="Be kind."))
    assert out.body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]


def test_mid_conversation_system_goes_into_the_previous_user_turn():
    out = tr(body([user("hi"), {"role": "system", "content": "Today is Monday."}], system="S"))
    messages = out.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "hi\n\n<system-reminder>\nToday is Monday.\n</system-reminder>"


def test_system_message_after_an_assistant_turn_goes_into_the_next_user_turn():
    out = tr(body([user("a"), assistant("b"), {"role": "system", "content": "note"}, user("c")]))
    messages = out.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[2]["content"] == "<system-reminder>\nnote\n</system-reminder>\n\nc"


def test_trailing_system_message_after_assistant_becomes_a_user_message():
    out = tr(body([user("a"), assistant("b"), {"role": "system", "content": "note"}]))
    assert out.body["messages"][-1] == {
        "role": "user",
        "content": "<system-reminder>\nnote\n</system-reminder>",
    }


# --- user content --------------------------------------------------------------------------------------


def test_images_become_image_url_parts():
    out = tr(
        body(
            [
                user(
                    [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
                    ]
                )
            ]
        )
    )
    parts = out.body["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}


def test_documents_text_content_and_pdf():
    docs = [
        {
            "type": "document",
            "title": "Notes",
            "source": {"type": "text", "media_type": "text/plain", "data": "abc"},
        },
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "inner"}]}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        {
            "type": "search_result",
            "title": "T",
            "source": "https://s",
            "content": [{"type": "text", "text": "found"}],
        },
    ]
    out = tr(body([user(docs)]))
    assert out.body["messages"][0]["content"] == "\n\n".join(
        [
            "Notes\n\nabc",
            "inner",
            "[document omitted: application/pdf not supported by this backend]",
            "T\nhttps://s\nfound",
        ]
    )
    assert "document:application/pdf" in out.dropped


# --- sampling and the rest -----------------------------------------------------------------------------


def test_sampling_stop_metadata_and_stream():
    b = body(
        [user("a")],
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["a", "b", "c", "d", "e"],
        metadata={"user_id": "u" * 300},
        stream=True,
    )
    out = tr(b, BackendProfile(max_output_tokens=512))
    assert out.body["max_tokens"] == 512
    assert (out.body["temperature"], out.body["top_p"], out.body["top_k"]) == (0.2, 0.9, 40)
    assert out.body["stop"] == ["a", "b", "c", "d", "e"] == out.stop_sequences  # vLLM, llama.cpp: any number
    assert out.body["user"] == "u" * 256
    assert out.body["stream"] is True and out.body["stream_options"] == {"include_usage": True}
    assert (
        out.stream is True and out.requested_model == "claude-sonnet-5" and out.body["model"] == "local-model"
    )


def test_stop_sequences_beyond_a_servers_limit_are_dropped_and_said():
    out = tr(body([user("a")], stop_sequences=list("abcde")), BackendProfile(max_stop_sequences=4))
    assert out.body["stop"] == list("abcd") and out.stop_sequences == list("abcde")
    assert "stop_sequences beyond 4" in out.dropped
    assert "stop_sequences beyond 4" not in tr(body([user("a")], stop_sequences=list("abcd"))).dropped


def test_the_profile_allows_any_number_of_stops_only_for_servers_known_to_take_them():
    config = Config(upstream="http://127.0.0.1:8000/v1")
    assert backend_profile(config, "vllm").max_stop_sequences is None
    assert backend_profile(config, "llamacpp").max_stop_sequences is None
    assert backend_profile(config, "openai").max_stop_sequences == 4


def test_stop_sequences_that_are_not_a_list_are_ignored():
    out = tr(body([user("a")], stop_sequences="END"))
    assert "stop" not in out.body and out.stop_sequences == []


def test_non_streaming_request_has_no_stream_options():
    out = tr(body([user("a")]))
    assert "stream" not in out.body and "stream_options" not in out.body and out.stream is False


@pytest.mark.parametrize(
    ("style", "thinking", "effort", "expected"),
    [
        (
            "chat_template_kwargs",
            {"type": "adaptive"},
            "medium",
            {"chat_template_kwargs": {"enable_thinking": True}, "reasoning_effort": "medium"},
        ),
        (
            "chat_template_kwargs",
            {"type": "enabled", "budget_tokens": 2048},
            None,
            {"chat_template_kwargs": {"enable_thinking": True}},
        ),
        (
            "chat_template_kwargs",
            {"type": "disabled"},
            None,
            {"chat_template_kwargs": {"enable_thinking": False}},
        ),
        ("reasoning_effort", {"type": "enabled", "budget_tokens": 2048}, None, {"reasoning_effort": "low"}),
        (
            "reasoning_effort",
            {"type": "enabled", "budget_tokens": 8000},
            None,
            {"reasoning_effort": "medium"},
        ),
        ("reasoning_effort", {"type": "enabled", "budget_tokens": 20000}, None, {"reasoning_effort": "high"}),
        ("reasoning_effort", {"type": "adaptive"}, "xhigh", {"reasoning_effort": "high"}),
        ("reasoning_effort", {"type": "adaptive"}, "max", {"reasoning_effort": "high"}),
        ("reasoning_effort", {"type": "disabled"}, None, {}),
        ("none", {"type": "enabled", "budget_tokens": 5000}, "high", {}),
    ],
)
def test_thinking_and_effort_per_style(style, thinking, effort, expected):
    extra = {"thinking": thinking}
    if effort:
        extra["output_config"] = {"effort": effort}
    out = tr(body([user("a")], **extra), BackendProfile(thinking_style=style))
    got = {k: out.body[k] for k in ("chat_template_kwargs", "reasoning_effort") if k in out.body}
    assert got == expected


def test_output_format_becomes_response_format():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    out = tr(body([user("a")], output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert out.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


def test_consumed_top_level_fields_are_listed_once():
    b = body(
        [
            user(
                [
                    {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}},
                ]
            )
        ],
        cache_control={"type": "ephemeral"},
        container="c",
        service_tier="auto",
        mcp_servers=[],
        speed="fast",
    )
    out = tr(b)
    for name in ("cache_control", "container", "service_tier", "mcp_servers", "speed"):
        assert out.dropped.count(name) == 1
        assert name not in out.body
