"""Anthropic request -> OpenAI request: validation and one test per translation rule."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import AnthropicError
from proxy.translate.request import (
    NO_RESULT_TEXT,
    BackendProfile,
    translate_request,
    validate_messages_request,
)
from proxy.translate.tools import openai_tool_name, sanitize_tool_id

READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "$schema": {"type": "string"}},
        "required": ["file_path"],
    },
}


def body(messages, **extra):
    return {"model": "claude-sonnet-5", "max_tokens": 1000, "messages": messages, **extra}


def tr(b, profile=None):
    return translate_request(validate_messages_request(b), "local-model", profile or BackendProfile())


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


def tool_use(id_, name="Read", input_=None):
    return {"type": "tool_use", "id": id_, "name": name, "input": input_ or {"file_path": "/a"}}


def tool_result(id_, content="ok", **extra):
    return {"type": "tool_result", "tool_use_id": id_, "content": content, **extra}


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


# --- assistant and tools in history -------------------------------------------------------------------


def test_tool_use_becomes_tool_calls_with_compact_deterministic_arguments():
    out = tr(
        body(
            [
                user("a"),
                assistant(
                    [{"type": "text", "text": "ok"}, tool_use("toolu_1", input_={"b": "é", "a": [1, 2]})]
                ),
                user([tool_result("toolu_1")]),
            ]
        )
    )
    message = out.body["messages"][1]
    assert message["content"] == "ok"
    assert message["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "Read", "arguments": '{"b":"é","a":[1,2]}'},
        }
    ]


def test_tool_ids_are_sanitized_consistently_on_both_sides():
    odd = "functions.Read:0"
    out = tr(body([user("a"), assistant([tool_use(odd)]), user([tool_result(odd)])]))
    call_id = out.body["messages"][1]["tool_calls"][0]["id"]
    assert call_id == sanitize_tool_id(odd) and call_id != odd
    assert all(c.isalnum() or c in "_-" for c in call_id)
    assert out.body["messages"][2] == {"role": "tool", "tool_call_id": call_id, "content": "ok"}


def test_thinking_history_dropped_or_sent_back():
    history = [
        user("a"),
        assistant(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "redacted_thinking", "data": "x"},
                {"type": "text", "text": "b"},
            ]
        ),
        user("c"),
    ]
    dropped = tr(body(history)).body["messages"][1]
    assert dropped == {"role": "assistant", "content": "b"}
    kept = tr(body(history), BackendProfile(send_reasoning_back=True)).body["messages"][1]
    assert kept["reasoning_content"] == "hmm"


def test_assistant_turn_of_only_thinking_disappears_and_users_merge():
    out = tr(
        body([user("a"), assistant([{"type": "thinking", "thinking": "hm", "signature": "s"}]), user("b")])
    )
    assert out.body["messages"] == [{"role": "user", "content": "a\n\nb"}]


def test_server_tool_blocks_are_dropped_with_a_warning():
    out = tr(
        body(
            [
                user("a"),
                assistant(
                    [
                        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                        {"type": "text", "text": "b"},
                    ]
                ),
                user("c"),
            ]
        )
    )
    assert out.body["messages"][1] == {"role": "assistant", "content": "b"}
    assert "server_tool_use" in out.dropped


def test_tool_results_come_first_in_call_order_then_user_text():
    out = tr(
        body(
            [
                user("a"),
                assistant([tool_use("t1"), tool_use("t2")]),
                user([{"type": "text", "text": "also"}, tool_result("t2", "two"), tool_result("t1", "one")]),
            ]
        )
    )
    messages = out.body["messages"][2:]
    assert messages == [
        {"role": "tool", "tool_call_id": "t1", "content": "one"},
        {"role": "tool", "tool_call_id": "t2", "content": "two"},
        {"role": "user", "content": "also"},
    ]


def test_tool_result_block_content_errors_images_and_tool_references():
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QQ"}}
    content = [{"type": "text", "text": "line1"}, image, {"type": "tool_reference", "tool_name": "Grep"}]
    out = tr(
        body(
            [
                user("a"),
                assistant([tool_use("t1"), tool_use("t2"), tool_use("t3")]),
                user(
                    [
                        tool_result("t1", content),
                        tool_result("t2", "boom", is_error=True),
                        {"type": "tool_result", "tool_use_id": "t3"},
                    ]
                ),
            ]
        )
    )
    messages = out.body["messages"][2:]
    assert messages[0] == {"role": "tool", "tool_call_id": "t1", "content": "line1\nTool loaded: Grep"}
    assert messages[1]["content"] == "Error: boom"
    assert messages[2]["content"] == ""
    assert messages[3]["role"] == "user"
    assert messages[3]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,QQ"},
    }


def test_unanswered_tool_calls_get_a_placeholder_result():
    out = tr(body([user("a"), assistant([tool_use("t1"), tool_use("t2")]), user([tool_result("t2")])]))
    assert out.body["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": NO_RESULT_TEXT}
    assert out.body["messages"][3] == {"role": "tool", "tool_call_id": "t2", "content": "ok"}
    trailing = tr(body([user("a"), assistant([tool_use("t9")])]))
    assert trailing.body["messages"][-1] == {"role": "tool", "tool_call_id": "t9", "content": NO_RESULT_TEXT}


def test_orphan_tool_result_becomes_user_text():
    out = tr(body([user([tool_result("ghost", "data")])]))
    assert out.body["messages"] == [{"role": "user", "content": "Result of tool call ghost:\ndata"}]


def test_consecutive_same_role_messages_are_merged():
    out = tr(body([user("a"), user("b"), assistant("c"), assistant("d")]))
    assert out.body["messages"] == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c\n\nd"},
    ]


def test_assistant_neighbours_left_by_an_empty_user_turn_are_merged():
    out = tr(body([user("a"), assistant("b"), user([{"type": "text", "text": ""}]), assistant("c")]))
    assert [m["role"] for m in out.body["messages"]] == ["user", "assistant"]


# --- tools and tool_choice -----------------------------------------------------------------------------


def test_tools_become_functions_without_schema_key():
    out = tr(body([user("a")], tools=[READ_TOOL]))
    function = out.body["tools"][0]["function"]
    assert function["name"] == "Read" and function["description"] == "Read a file"
    assert "$schema" not in function["parameters"]
    assert "$schema" in function["parameters"]["properties"]  # a property that happens to be named so stays
    assert out.tool_schemas["Read"] is READ_TOOL["input_schema"]


def test_long_and_odd_tool_names_map_reversibly():
    names = ["mcp__server.tool/with:odd chars", "x" * 100]
    tools = [{"name": n, "input_schema": {"type": "object"}} for n in names]
    out = tr(body([user("a")], tools=tools))
    for name, tool in zip(names, out.body["tools"], strict=True):
        mapped = tool["function"]["name"]
        assert mapped != name and len(mapped) <= 64
        assert out.tool_names[mapped] == name
    assert openai_tool_name(names[0]) == openai_tool_name(names[0])
    assert openai_tool_name("a.b") != openai_tool_name("a:b")


def test_server_tools_without_schema_are_dropped_and_defer_loading_noted():
    tools = [{"type": "web_search_20250305", "name": "web_search"}, {**READ_TOOL, "defer_loading": True}]
    out = tr(body([user("a")], tools=tools))
    assert [t["function"]["name"] for t in out.body["tools"]] == ["Read"]
    assert "tool:web_search_20250305" in out.dropped and "defer_loading" in out.dropped


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "Read"},
            {"tool_choice": {"type": "function", "function": {"name": "Read"}}},
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
    ],
)
def test_tool_choice(choice, expected):
    out = tr(body([user("a")], tools=[READ_TOOL], tool_choice=choice))
    assert {k: out.body[k] for k in expected} == expected
    if "parallel_tool_calls" not in expected:
        assert "parallel_tool_calls" not in out.body


def test_no_tools_means_no_tools_and_no_tool_choice():
    out = tr(body([user("a")], tool_choice={"type": "any"}))
    assert "tools" not in out.body and "tool_choice" not in out.body


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
    assert out.body["stop"] == ["a", "b", "c", "d"] and out.stop_sequences == ["a", "b", "c", "d", "e"]
    assert out.body["user"] == "u" * 256
    assert out.body["stream"] is True and out.body["stream_options"] == {"include_usage": True}
    assert (
        out.stream is True and out.requested_model == "claude-sonnet-5" and out.body["model"] == "local-model"
    )


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


# --- fuzz: any valid conversation translates into a shape strict chat templates accept ------------------

ids = st.sampled_from(["t1", "t2", "t3", "odd.id:1"])
blocks_strategy = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=5)),
    st.builds(lambda i: tool_use(i), ids),
    st.builds(lambda i, err: tool_result(i, "r", is_error=err), ids, st.booleans()),
    st.just({"type": "thinking", "thinking": "hm", "signature": "s"}),
    st.just({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QQ"}}),
    st.just({"type": "mystery_block"}),
)
messages_strategy = st.lists(
    st.builds(
        lambda role, content: {"role": role, "content": content},
        st.sampled_from(["user", "assistant", "system"]),
        st.one_of(st.text(max_size=5), st.lists(blocks_strategy, max_size=4)),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(messages_strategy, st.booleans())
def test_any_conversation_translates_to_a_strict_template_shape(messages, with_system):
    extra = {"system": "S"} if with_system else {}
    out = tr(body(messages, **extra))
    roles = [m["role"] for m in out.body["messages"]]
    assert roles.count("system") == (1 if with_system else 0)
    assert "system" not in roles[1:]
    for a, b in zip(roles, roles[1:], strict=False):
        assert not (a == b and a in ("user", "assistant"))
    pending: list[str] = []
    for message in out.body["messages"]:
        if message["role"] == "tool":
            assert pending and message["tool_call_id"] == pending.pop(0)
        else:
            assert not pending, "a tool call was left unanswered"
        if message["role"] == "assistant":
            pending = [c["id"] for c in message.get("tool_calls", [])]
            assert message.get("content") or pending or message.get("reasoning_content")
    assert not pending
    json.dumps(out.body)


def test_roles_from_newer_clients_count_as_user_context() -> None:
    """Claude Code has sent roles such as "ctx" and "msg" inside `messages`: never a 400, their text reaches
    the model as user-side context, in place."""
    request = body(
        [
            user("first"),
            {"role": "ctx", "content": "workspace notes"},
            {"role": "assistant", "content": "ok"},
            {"role": "msg", "content": [{"type": "text", "text": "second"}]},
        ]
    )
    validate_messages_request(request)
    translated = translate_request(request, "backend", BackendProfile())
    roles = [m["role"] for m in translated.body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert "workspace notes" in str(translated.body["messages"][0]["content"])
    assert "second" in str(translated.body["messages"][2]["content"])
    assert {"role:ctx", "role:msg"} <= set(translated.dropped)


def test_compaction_summaries_and_tool_announcements_reach_the_model_as_text() -> None:
    """Context that only Anthropic's beta blocks carry must not vanish: a compaction summary stands in for the
    whole earlier conversation, and tool additions tell the model which tools it may now call."""
    request = body(
        [
            user("start"),
            assistant(
                [
                    {"type": "compaction", "content": "Summary: hello.py was edited."},
                    {"type": "text", "text": "ok"},
                ]
            ),
            user("next"),
            {
                "role": "system",
                "content": [
                    {"type": "tool_addition", "tool": {"type": "tool_reference", "name": "WebFetch"}}
                ],
            },
            assistant(
                [{"type": "compaction", "encrypted_content": "opaque"}, {"type": "text", "text": "done"}]
            ),
        ]
    )
    translated = translate_request(validate_messages_request(request), "backend", BackendProfile())
    messages = translated.body["messages"]
    assert messages[1] == {"role": "assistant", "content": "Summary: hello.py was edited.\n\nok"}
    assert "Tool now available: WebFetch" in messages[2]["content"]
    assert messages[3]["content"] == "done"  # an encrypted-only compaction has nothing readable to pass on
    assert "compaction" in translated.dropped


def test_tool_translation_is_memoised_without_sharing_mutable_state() -> None:
    """The same tools on every turn translate once; each request still gets its own name maps."""
    tools = [{"name": "Read", "input_schema": {"$schema": "x", "type": "object", "properties": {}}}]
    first = translate_request(body([user("a")], tools=tools), "backend", BackendProfile())
    first.tool_names["junk"] = "junk"
    second = translate_request(body([user("b")], tools=tools), "backend", BackendProfile())
    assert second.body["tools"] == first.body["tools"]
    assert "junk" not in second.tool_names and second.tool_names == {"Read": "Read"}
    assert "$schema" in second.dropped  # what was consumed is still reported on a memo hit
    changed = translate_request(
        body([user("c")], tools=[{**tools[0], "description": "new"}]), "backend", BackendProfile()
    )
    assert changed.body["tools"][0]["function"]["description"] == "new"
