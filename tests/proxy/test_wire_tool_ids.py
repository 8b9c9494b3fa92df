"""Tool-call ids and which call a streamed fragment belongs to (wire audit findings 1, 3 and 6).

Ids must be unique within one assistant message, streamed or not, and survive the next turn's translation; a
fragment starts another call only when the wire really says so (a new id with a name, or a name after complete
arguments), never because a server changes an id mid-call or repeats a name.
"""

from __future__ import annotations

import pytest
from anthropic import AsyncAnthropic

from proxy.relay import completion_as_chunk
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.response import completion_to_message
from proxy.translate.stream import StreamTranslator
from proxy.translate.tools import unique_tool_id
from tests.proxy.conftest import ProxyFactory, envelope
from tests.proxy.fake_backend import FakeBackend, Reply
from tests.proxy.fake_chunks import chunks_from_blocks
from tests.proxy.stream_helpers import SCHEMA, blocks, chunk, make, run, tc


def streamed(chunks: list[dict]) -> tuple[StreamTranslator, list[dict]]:
    translator, events = run(chunks)
    return translator, blocks(events)


def non_streamed(calls: list[dict]) -> dict:
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": calls},
                "finish_reason": "tool_calls",
            }
        ]
    }
    return completion_to_message(completion, make().ctx)


def whole_call(id_: str | None, path: str, name: str = "Read") -> dict:
    call: dict = {"type": "function", "function": {"name": name, "arguments": f'{{"file_path":"{path}"}}'}}
    if id_:
        call["id"] = id_
    return call


# --- finding 1: duplicate ids ----------------------------------------------------------------------------------


def test_a_reused_id_gets_a_suffix_when_streamed():
    chunks = [
        chunk({"tool_calls": [tc(0, "call_0", "Read", '{"file_path":"/a"}')]}),
        chunk({"tool_calls": [tc(1, "call_0", "Read", '{"file_path":"/b"}')]}),
        chunk({}, "tool_calls"),
    ]
    translator, content = streamed(chunks)
    assert [(b["id"], b["input"]) for b in content] == [
        ("call_0", {"file_path": "/a"}),
        ("call_0_2", {"file_path": "/b"}),
    ]
    assert any("reused tool-call id 'call_0'" in p for p in translator.problems)


def test_a_reused_id_gets_the_same_suffix_when_not_streamed():
    message = non_streamed(
        [whole_call("call_0", "/a"), whole_call("call_0", "/b"), whole_call("call_0", "/c")]
    )
    assert [b["id"] for b in message["content"]] == ["call_0", "call_0_2", "call_0_3"]


def test_an_id_needing_sanitising_is_sanitised_then_made_unique_the_same_way_on_both_paths():
    raw_id = "functions.Read:0"
    chunks = [
        chunk({"tool_calls": [tc(0, raw_id, "Read", '{"file_path":"/a"}')]}),
        chunk({"tool_calls": [tc(1, raw_id, "Read", '{"file_path":"/b"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, content = streamed(chunks)
    stream_ids = [b["id"] for b in content]
    message_ids = [
        b["id"] for b in non_streamed([whole_call(raw_id, "/a"), whole_call(raw_id, "/b")])["content"]
    ]
    assert stream_ids == message_ids
    assert stream_ids[0] != stream_ids[1] and all(":" not in i and "." not in i for i in stream_ids)


def test_a_generated_suffix_that_the_backend_also_uses_is_not_reused():
    used: set[str] = set()
    assert [unique_tool_id(i, used) for i in ["c", "c", "c_2", "c"]] == ["c", "c_2", "c_2_2", "c_3"]


def test_an_answer_that_ignored_stream_true_gets_unique_ids_too():
    completion = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "tool_calls": [whole_call("x", "/a"), whole_call("x", "/b")],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    _, content = streamed([completion_as_chunk(completion)])
    assert [b["id"] for b in content] == ["x", "x_2"]


def test_the_next_turn_gives_each_call_its_own_result():
    """The round trip of the audit: the streamed answer goes back as history with one tool_result per call."""
    chunks = [
        chunk({"tool_calls": [tc(0, "call_0", "Read", '{"file_path":"/a"}')]}),
        chunk({"tool_calls": [tc(1, "call_0", "Read", '{"file_path":"/b"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, content = streamed(chunks)
    results = [
        {"type": "tool_result", "tool_use_id": content[0]["id"], "content": "contents of /a"},
        {"type": "tool_result", "tool_use_id": content[1]["id"], "content": "contents of /b"},
    ]
    body = {
        "model": "claude-sonnet-5",
        "max_tokens": 100,
        "tools": [{"name": "Read", "input_schema": SCHEMA}],
        "messages": [
            {"role": "user", "content": "read both"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": results},
        ],
    }
    messages = translate_request(body, "m", BackendProfile()).body["messages"]
    assistant = next(m for m in messages if m["role"] == "assistant")
    call_ids = [call["id"] for call in assistant["tool_calls"]]
    tool_messages = [(m["tool_call_id"], m["content"]) for m in messages if m["role"] == "tool"]
    assert len(set(call_ids)) == 2
    assert tool_messages == [(call_ids[0], "contents of /a"), (call_ids[1], "contents of /b")]
    assert not any(m["role"] == "user" and "Result of tool call" in str(m["content"]) for m in messages)


# --- finding 3: an id that changes after the first fragment ------------------------------------------------------


def test_an_id_that_changes_without_a_name_keeps_the_arguments():
    """Poolside: the first fragment has id A and the name, later ones id B and the arguments."""
    chunks = [
        chunk({"tool_calls": [tc(0, "call_A", "Read", "")]}),
        chunk({"tool_calls": [tc(0, "call_B", None, '{"file_path":')]}),
        chunk({"tool_calls": [tc(0, "call_B", None, '"/etc/hosts"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, content = streamed(chunks)
    assert content == [
        {"type": "tool_use", "id": "call_A", "name": "Read", "input": {"file_path": "/etc/hosts"}}
    ]


# --- finding 6: a second call without an id ------------------------------------------------------------------


def test_a_new_name_on_the_same_index_after_complete_arguments_is_a_second_call():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Ls", "{}")]}),
        chunk({"tool_calls": [tc(0, None, "Read", '{"file_path":"/b"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, content = streamed(chunks)
    assert [(b["name"], b["input"]) for b in content] == [("Ls", {}), ("Read", {"file_path": "/b"})]
    assert content[0]["id"] == "c1" and content[1]["id"].startswith("toolu_")


def test_calls_with_neither_index_nor_id_are_kept_apart_as_when_not_streamed():
    first = {"function": {"name": "Read", "arguments": '{"file_path":"/a"}'}}
    second = {"function": {"name": "Ls", "arguments": "{}"}}
    _, content = streamed(
        [chunk({"tool_calls": [first]}), chunk({"tool_calls": [second]}), chunk({}, "tool_calls")]
    )
    message = non_streamed([first, second])
    assert [(b["name"], b["input"]) for b in content] == [("Read", {"file_path": "/a"}), ("Ls", {})]
    assert [(b["name"], b["input"]) for b in message["content"]] == [(b["name"], b["input"]) for b in content]


def test_the_same_tool_again_with_new_arguments_is_a_second_call():
    chunks = [
        chunk({"tool_calls": [{"function": {"name": "Read", "arguments": '{"file_path":"/a"}'}}]}),
        chunk({"tool_calls": [{"function": {"name": "Read", "arguments": '{"file_path":"/b"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    _, content = streamed(chunks)
    assert [b["input"] for b in content] == [{"file_path": "/a"}, {"file_path": "/b"}]


@pytest.mark.parametrize(
    "later",
    [
        tc(0, None, "Read", ""),  # the name repeated on a last, empty fragment
        tc(0, None, "Read", None),
        tc(0, None, "Read", '{"file_path":"/a"}'),  # the whole call repeated
        tc(0, "c1", "Read", ""),  # id and name repeated
    ],
)
def test_a_repeat_after_complete_arguments_is_not_another_call(later):
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]}),
        chunk({"tool_calls": [later]}),
    ]
    _, content = streamed([*chunks, chunk({}, "tool_calls")])
    assert content == [{"type": "tool_use", "id": "c1", "name": "Read", "input": {"file_path": "/a"}}]


def test_a_name_repeated_on_every_fragment_of_unfinished_arguments_is_one_call():
    pieces = ['{"file_', 'path":', '"/a"}']
    chunks = [
        chunk({"tool_calls": [tc(0, "c1" if i == 0 else None, "Read", p)]}) for i, p in enumerate(pieces)
    ]
    _, content = streamed([*chunks, chunk({}, "tool_calls")])
    assert content == [{"type": "tool_use", "id": "c1", "name": "Read", "input": {"file_path": "/a"}}]


def test_two_calls_in_one_chunk_on_one_index_are_two_calls():
    fragments = [tc(0, None, "Read", '{"file_path":"/a"}'), tc(0, None, "Ls", "{}")]
    _, content = streamed([chunk({"tool_calls": fragments}), chunk({}, "tool_calls")])
    assert [b["name"] for b in content] == ["Read", "Ls"]


def test_a_new_name_after_a_waiting_call_is_complete_is_a_second_call():
    """The call on index 1 waits behind the open one on index 0 (not started yet) when the second name arrives."""
    chunks = [
        chunk({"tool_calls": [tc(0, "c0", "Read", '{"file_path":"/a"')]}),
        chunk({"tool_calls": [tc(1, None, "Ls", "{}")]}),
        chunk({"tool_calls": [tc(1, None, None, "\n")]}),
        chunk({"tool_calls": [tc(1, None, "Read", '{"file_path":"/b"}')]}),
        chunk({"tool_calls": [tc(0, None, None, "}")]}),
        chunk({}, "tool_calls"),
    ]
    _, content = streamed(chunks)
    assert [(b["name"], b["input"]) for b in content] == [
        ("Read", {"file_path": "/a"}),
        ("Ls", {}),
        ("Read", {"file_path": "/b"}),
    ]


# --- ids reused across turns (real Claude Code audit, 2026-12-04) -----------------------------------------------

SECOND_TURN = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 512,
    "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "run three commands"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_0", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_0", "content": "first"}]},
    ],
}


@pytest.mark.parametrize("stream", [True, False])
async def test_an_id_the_backend_already_gave_on_an_earlier_turn_is_made_unique(
    start_proxy: ProxyFactory, stream: bool
) -> None:
    """Servers that number calls per answer send `call_0` on every turn. Claude Code, given a second tool_use
    with an id its conversation already has, turns that call into "[Tool use interrupted]" and its result into
    "(no content)", so the model never sees the output: the new call must get an id of its own."""
    again = [{"type": "tool_use", "id": "call_0", "name": "Bash", "input": {"command": "echo second"}}]
    async with FakeBackend(Reply(chunks=chunks_from_blocks(again))) as backend:
        proxy = await start_proxy(upstream=backend.url)
        client = AsyncAnthropic(base_url=proxy.url, api_key="x")
        if stream:
            async with client.messages.stream(**SECOND_TURN) as events:
                message = await events.get_final_message()
        else:
            message = await client.messages.create(**SECOND_TURN)
    (call,) = [block for block in message.content if block.type == "tool_use"]
    assert call.id != "call_0" and call.input == {"command": "echo second"}
    follow_up = translate_request(
        {
            **SECOND_TURN,
            "messages": [
                *SECOND_TURN["messages"],
                {"role": "assistant", "content": [call.model_dump()]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "second"}],
                },
            ],
        },
        "m",
        BackendProfile(),
    ).body["messages"]
    results = {m["tool_call_id"]: m["content"] for m in follow_up if m["role"] == "tool"}
    assert results == {"call_0": "first", call.id: "second"}  # each result answers its own call


# --- server-run tools (real Claude Code audit, 2026-12-04) -------------------------------------------------------

WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}


async def test_a_request_offering_only_web_search_is_refused_instead_of_answered_with_made_up_results(
    start_proxy: ProxyFactory,
) -> None:
    """Claude Code's WebSearch sends its own request offering only the server-run `web_search` tool. The proxy
    dropped it and the local model "searched" without a tool; Claude Code gave its text to the main model as
    search results. Refused, WebSearch fails visibly instead; with a regular tool next to it, the request goes."""
    search = {
        "model": "claude-haiku-4-5",
        "max_tokens": 512,
        "tools": [WEB_SEARCH],
        "tool_choice": {"type": "auto"},
        "messages": [{"role": "user", "content": "Perform a web search for the query: aiohttp 4.0"}],
    }
    async with FakeBackend() as backend:
        proxy = await start_proxy(upstream=backend.url)
        for stream in (False, True):
            message = await envelope(
                await proxy.post("/v1/messages", {**search, "stream": stream}), 400, "invalid_request_error"
            )
            assert message.startswith("web_search: tools that Anthropic's servers run are not available")
        assert not any(r.path.endswith("/chat/completions") for r in backend.requests)
        counted = await proxy.post("/v1/messages/count_tokens", search)
        assert counted.status == 200  # counting such a request still works
        mixed = {**search, "tools": [WEB_SEARCH, {"name": "Bash", "input_schema": {"type": "object"}}]}
        assert (await proxy.post("/v1/messages", mixed)).status == 200
