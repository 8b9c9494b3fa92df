"""Anthropic request -> OpenAI request: the conversation history (assistant turns, tool calls and their
results, merged roles), tools and tool_choice, and a fuzz test that any valid conversation gives a shape
strict chat templates accept."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.translate.content import context_block_text
from proxy.translate.request import (
    NO_RESULT_TEXT,
    BackendProfile,
    translate_request,
    validate_messages_request,
)
from proxy.translate.tools import openai_tool_name, sanitize_tool_id
from tests.proxy.request_helpers import READ_TOOL, assistant, body, tool_result, tool_use, tr, user

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
    min_size=1,  # an empty conversation is a 400 (test_translate_request)
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


def test_an_image_only_tool_result_says_where_its_image_went():
    """Real Claude Code audit: a Read of a PNG gave the tool message empty content, with the image in a user
    message after it; the tool message now says so."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QQ"}}
    out = tr(body([user("a"), assistant([tool_use("t1")]), user([tool_result("t1", [image])])]))
    tool, images = out.body["messages"][2:4]
    assert tool == {"role": "tool", "tool_call_id": "t1", "content": "[image: in the next user message]"}
    assert images["role"] == "user" and images["content"][0]["text"] == "Images returned by tool call t1:"


def test_loaded_and_added_tools_are_named_as_the_model_calls_them():
    """A tool name over 64 characters is shortened in `tools`; ToolSearch's `Tool loaded:` line named the long
    one, which a backend that checks names would refuse."""
    long_name = "mcp__srv__a_really_long_tool_name_that_goes_on_and_on_for_many_characters_xyz"
    reference = {"type": "tool_reference", "tool_name": long_name}
    out = tr(body([user("a"), assistant([tool_use("t1")]), user([tool_result("t1", [reference])])]))
    (text,) = [m["content"] for m in out.body["messages"] if m["role"] == "tool"]
    assert text == f"Tool loaded: {openai_tool_name(long_name)}" and len(openai_tool_name(long_name)) <= 64
    assert context_block_text({"type": "tool_addition", "tool": {"name": long_name}}) == (
        f"Tool now available: {openai_tool_name(long_name)}"
    )
