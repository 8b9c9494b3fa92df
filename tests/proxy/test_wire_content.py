"""Content the stream must not lose or double, and that both paths read alike (wire audit findings 4, 7, 8).

- `delta.content` as a list of parts; a backend that answers `stream: true` with a whole JSON completion (one
  chunk made by `completion_as_chunk`): content parts, `refusal` and vLLM's `stop_reason` survive as they do
  non-streamed.
- llama.cpp `--reasoning-format deepseek-legacy`: `<think>` tags in content and `reasoning_content` at once.
- a lone surrogate escape (`\\ud83d`) costs one character (U+FFFD), not the chunk.
"""

from __future__ import annotations

import anthropic
import pytest

from proxy.relay import completion_as_chunk
from proxy.translate.chunks import UNPARSEABLE, parse_chunk, parse_in_full
from proxy.translate.response import completion_to_message
from tests.proxy.conftest import RunningProxy
from tests.proxy.fake_backend import FakeBackend, Reply
from tests.proxy.stream_helpers import accumulate, blocks, chunk, make, run


def streamed(chunks: list[dict]) -> tuple[list[dict], str | None, str | None]:
    _, events = run(chunks, make(stop_sequences=["END"]))
    message = accumulate(events)
    return blocks(events), message.stop_reason, message.stop_sequence


def non_streamed(completion: dict) -> tuple[list[dict], str | None, str | None]:
    message = completion_to_message(completion, make(stop_sequences=["END"]).ctx)
    return message["content"], message["stop_reason"], message["stop_sequence"]


def completion(message: dict, finish_reason: str = "stop", **choice_extra: object) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}
    return {"id": "c", "model": "m", "choices": [{**choice, **choice_extra}]}


# --- finding 4 ---------------------------------------------------------------------------------------------------


def test_content_delta_as_a_list_of_parts_is_text():
    parts = [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}]
    content, stop, _ = streamed(
        [chunk({"content": parts}), chunk({"content": [{"type": "text", "text": "!"}]}), chunk({}, "stop")]
    )
    assert content == [{"type": "text", "text": "Hello world!"}] and stop == "end_turn"


@pytest.mark.parametrize(
    "answer",
    [
        completion({"content": [{"type": "text", "text": "Hello from parts"}]}),
        completion({"content": None, "refusal": "I refuse"}),
        completion({"content": "", "refusal": "I refuse"}),
        completion({"content": "Sure.", "refusal": "ignored beside an answer"}),
        completion({"content": "abc"}, stop_reason="END"),  # vLLM: the stop string that ended it
        completion({"content": "abc"}, stopping_word="END"),  # llama.cpp's native field
        completion(
            {"content": None, "function_call": {"name": "Read", "arguments": '{"file_path":"/a"}'}},
            "function_call",
        ),
        completion({"content": "x", "reasoning_content": "why"}),
    ],
)
def test_an_answer_that_ignored_stream_true_gives_the_non_streamed_message(answer):
    content, stop, stop_sequence = streamed([completion_as_chunk(answer)])
    expected = non_streamed(answer)
    for block in content + expected[0]:
        block.pop("id", None)  # a call without an id gets a fresh one on each path
    assert (content, stop, stop_sequence) == expected


def test_the_refusal_of_an_ignored_stream_is_a_refusal():
    _, stop, _ = streamed([completion_as_chunk(completion({"content": None, "refusal": "no"}))])
    assert stop == "refusal"


async def test_the_proxy_relays_a_json_answer_to_a_stream_request(proxy: RunningProxy, backend: FakeBackend):
    """End to end: the backend ignores stream:true and answers with list content and vLLM's stop_reason."""
    answer = completion({"content": [{"type": "text", "text": "abc"}]}, stop_reason="END")
    backend.push(Reply(body=answer))
    async with proxy.sdk().messages.stream(
        model="claude-sonnet-5",
        max_tokens=50,
        stop_sequences=["END"],
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        message = await stream.get_final_message()
    assert [b.to_dict() for b in message.content] == [{"type": "text", "text": "abc"}]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")


# --- finding 7 ---------------------------------------------------------------------------------------------------

LEGACY_STREAM = [
    chunk({"content": "<think>", "reasoning_content": "plan"}),
    chunk({"content": "plan", "reasoning_content": " more"}),
    chunk({"content": " more</think>"}),
    chunk({"content": "Answer"}),
    chunk({}, "stop"),
]


def test_deepseek_legacy_reasoning_is_shown_once_when_streamed():
    content, _, _ = streamed(LEGACY_STREAM)
    assert [(b["type"], b.get("thinking", b.get("text"))) for b in content] == [
        ("thinking", "plan more"),
        ("text", "Answer"),
    ]


def test_deepseek_legacy_think_tags_are_not_shown_as_text_when_not_streamed():
    answer = completion({"content": "<think>plan more</think>Answer", "reasoning_content": "plan more"})
    content, _, _ = non_streamed(answer)
    assert [(b["type"], b.get("thinking", b.get("text"))) for b in content] == [
        ("thinking", "plan more"),
        ("text", "Answer"),
    ]
    assert content == streamed(LEGACY_STREAM)[0]


def test_think_tags_without_a_reasoning_field_are_still_the_reasoning():
    content, _, _ = non_streamed(completion({"content": "<think>plan</think>Answer"}))
    assert [b.get("thinking", b.get("text")) for b in content] == ["plan", "Answer"]


# --- finding 8 ---------------------------------------------------------------------------------------------------

LONE = b'{"choices":[{"index":0,"delta":{"content":"x\\ud83dy"},"finish_reason":null}]}'


def test_a_lone_surrogate_costs_one_character_not_the_chunk():
    parsed = parse_chunk(LONE)
    assert parsed == {"choices": [{"index": 0, "delta": {"content": "x\ufffdy"}, "finish_reason": None}]}


def test_a_whole_answer_with_a_lone_surrogate_parses_with_a_replacement():
    body = b'{"choices":[{"message":{"content":"a\\udc00b","tool_calls":[{"function":{"name":"R\\ud800","arguments":"{}"}}]}}]}'
    parsed = parse_in_full(body)
    assert parsed["choices"][0]["message"]["content"] == "a\ufffdb"  # type: ignore[index]
    assert parsed["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "R\ufffd"  # type: ignore[index]


@pytest.mark.parametrize("data", [b'{"a": NaN, "b": "\\u0041"}', b'{"a": "\\ud83d"', b"\\u0041"])
def test_what_is_not_json_stays_unparseable(data):
    assert parse_in_full(data) is UNPARSEABLE


def test_a_valid_surrogate_pair_is_untouched():
    assert parse_in_full(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}


async def test_the_proxy_streams_a_chunk_with_a_lone_surrogate(proxy: RunningProxy, backend: FakeBackend):
    backend.push(Reply(chunks=[chunk({"content": "ab"}), b"data: " + LONE + b"\n\n", chunk({}, "stop")]))
    async with proxy.sdk().messages.stream(
        model="claude-sonnet-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = await stream.get_final_message()
    assert isinstance(message, anthropic.types.Message)
    assert [b.to_dict() for b in message.content] == [{"type": "text", "text": "abx\ufffdy"}]


def _completion_with(text_json: bytes) -> bytes:
    """A whole chat.completion whose message content is `text_json` (raw JSON text, e.g. with a lone surrogate)."""
    return (
        b'{"id":"c","object":"chat.completion","model":"fake-model","choices":[{"index":0,"finish_reason":"stop",'
        b'"message":{"role":"assistant","content":'
        + text_json
        + b'}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}'
    )


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "backend-ignored-stream"])
async def test_a_whole_answer_with_a_lone_surrogate_reaches_the_client(
    proxy: RunningProxy, backend: FakeBackend, stream: bool
) -> None:
    """Was a 500 "malformed response" for the whole answer (orjson rejects a lone surrogate escape)."""
    backend.push(Reply(body=_completion_with(b'"x\\ud83dy"'), headers={"Content-Type": "application/json"}))
    request = {"model": "claude-sonnet-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        async with proxy.sdk().messages.stream(**request) as events:
            message = await events.get_final_message()
    else:
        message = await proxy.sdk().messages.create(**request)
    assert [b.to_dict() for b in message.content] == [{"type": "text", "text": "x\ufffdy"}]
