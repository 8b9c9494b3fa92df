"""Prefill echo stripping only where the backend echoes (finding 5), and unusable tool arguments treated alike
streamed and not: a text block saying so and end_turn, never a tool run with {} (finding 9)."""

from __future__ import annotations

import pytest

from proxy.translate.prefill import echoes_prefill
from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.stream import StreamTranslator
from tests.proxy.conftest import ProxyFactory
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks
from tests.proxy.stream_helpers import SCHEMA, accumulate, blocks, chunk, run, tc

# --- finding 5 ---------------------------------------------------------------------------------------------------


def prefill_context(echoed: bool) -> ResponseContext:
    return ResponseContext("claude-sonnet-5", {}, {}, [], "msg_1", 10, prefill="[", prefill_echoed=echoed)


@pytest.mark.parametrize("pieces", [["[1, 2], [3, 4]]"], ["[", "1, 2], [3, 4]]"], ["[1", ", 2], [3, 4]]"]])
def test_a_backend_that_does_not_echo_keeps_an_answer_that_starts_like_the_prefill(pieces):
    chunks = [chunk({"content": piece}) for piece in pieces] + [chunk({}, "stop")]
    _, events = run(chunks, StreamTranslator(prefill_context(echoed=False)))
    assert blocks(events) == [{"type": "text", "text": "[1, 2], [3, 4]]"}]


def test_a_backend_that_does_not_echo_keeps_it_when_not_streamed_too():
    completion = {"choices": [{"message": {"content": "[1, 2], [3, 4]]"}, "finish_reason": "stop"}]}
    message = completion_to_message(completion, prefill_context(echoed=False))
    assert message["content"] == [{"type": "text", "text": "[1, 2], [3, 4]]"}]


def test_llama_server_which_echoes_still_gets_its_echo_removed():
    chunks = [chunk({"content": "[[1, 2], [3, 4]]"}), chunk({}, "stop")]
    _, events = run(chunks, StreamTranslator(prefill_context(echoed=True)))
    assert blocks(events) == [{"type": "text", "text": "[1, 2], [3, 4]]"}]


@pytest.mark.parametrize(
    ("kind", "echoes"),
    [
        ("llamacpp", True),
        ("vllm", False),
        ("sglang", False),
        ("ollama", False),
        ("openai", False),
        ("unknown", False),
    ],
)
def test_only_llama_server_is_known_to_echo(kind, echoes):
    assert echoes_prefill(kind) is echoes


# --- finding 9 ---------------------------------------------------------------------------------------------------

BASH = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}


def context() -> ResponseContext:
    return ResponseContext(
        "claude-sonnet-5", {"Bash": "Bash", "Read": "Read"}, {"Bash": BASH, "Read": SCHEMA}, [], "m", 1
    )


def both_paths(arguments: str, header_first: bool) -> tuple[tuple[list[dict], str], tuple[list[dict], str]]:
    fragments = [tc(0, "c1", "Bash", "")] if header_first else []
    fragments.append(tc(0, None if header_first else "c1", None if header_first else "Bash", arguments))
    chunks = [chunk({"tool_calls": [f]}) for f in fragments] + [chunk({}, "tool_calls")]
    _, events = run(chunks, StreamTranslator(context()))
    stream = (blocks(events), accumulate(events).stop_reason)
    call = {"id": "c1", "type": "function", "function": {"name": "Bash", "arguments": arguments}}
    answer = {"choices": [{"message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    message = completion_to_message(answer, context())
    return stream, (message["content"], message["stop_reason"])


@pytest.mark.parametrize("header_first", [False, True])
@pytest.mark.parametrize("arguments", ["ls -la", "command=ls", "[1, 2]", '"just a string"'])
def test_arguments_that_are_no_json_object_become_text_and_end_turn_on_both_paths(arguments, header_first):
    stream, non_stream = both_paths(arguments, header_first)
    assert stream == non_stream
    content, stop = stream
    assert stop == "end_turn" and [b["type"] for b in content] == ["text"]
    assert "invalid JSON arguments" in content[0]["text"] and arguments in content[0]["text"]


@pytest.mark.parametrize("header_first", [False, True])
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [('"{\\"command\\":\\"ls\\"}"', {"command": "ls"}), ("{'command': 'ls'}", {"command": "ls"})],
)
def test_repairable_arguments_still_run_on_both_paths(arguments, expected, header_first):
    stream, non_stream = both_paths(arguments, header_first)
    assert stream == non_stream
    assert stream[0] == [{"type": "tool_use", "id": "c1", "name": "Bash", "input": expected}]
    assert stream[1] == "tool_use"


def test_an_unusable_call_beside_a_good_one_leaves_the_good_one_running():
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", "Bash", "ls -la")]}),
        chunk({"tool_calls": [tc(1, "c2", "Read", '{"file_path":"/a"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, events = run(chunks, StreamTranslator(context()))
    content = blocks(events)
    assert [b["type"] for b in content] == ["text", "tool_use"]
    assert content[1]["input"] == {"file_path": "/a"} and accumulate(events).stop_reason == "tool_use"


def test_a_call_without_arguments_is_still_an_explicit_empty_object():
    ctx = ResponseContext("claude-sonnet-5", {"Ls": "Ls"}, {"Ls": {"type": "object"}}, [], "m", 1)
    _, events = run(
        [chunk({"tool_calls": [tc(0, "c1", "Ls", "")]}), chunk({}, "tool_calls")], StreamTranslator(ctx)
    )
    assert blocks(events) == [{"type": "tool_use", "id": "c1", "name": "Ls", "input": {}}]


@pytest.mark.parametrize(("llamacpp", "expected"), [(False, "[1, 2], [3, 4]]"), (True, "1, 2], [3, 4]]")])
async def test_through_the_proxy_only_llama_servers_echo_is_removed(
    start_proxy: ProxyFactory, llamacpp: bool, expected: str
) -> None:
    """vLLM (continue_final_message, no echo) kept "1, 2], [3, 4]]" of "[1, 2], [3, 4]]" after a "[" prefill:
    the proxy stripped an echo that was never sent."""
    answer = Reply(chunks=chunks_from_blocks([{"type": "text", "text": "[1, 2], [3, 4]]"}]))
    async with FakeBackend(answer, llamacpp=llamacpp) as backend:
        proxy = await start_proxy(upstream=backend.url)
        message = await proxy.sdk().messages.create(
            model="claude-sonnet-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "pairs?"}, {"role": "assistant", "content": "["}],
        )
    assert [b.text for b in message.content] == [expected]
