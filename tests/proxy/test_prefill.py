"""An assistant prefill (the request ends with the assistant's own start of the answer): the backend is asked to
continue it, and llama.cpp's repeat of it at the start of the answer is removed, streamed or not."""

from __future__ import annotations

import pytest

from proxy.translate.prefill import PrefillEcho
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.stream import StreamTranslator
from tests.proxy.stream_helpers import blocks, chunk, run, tc

PREFILL = "One, two, three,"


def context(prefill: str = PREFILL) -> ResponseContext:
    return ResponseContext("claude-sonnet-5", {"Read": "Read"}, {}, [], "msg_1", 10, prefill=prefill)


def streamed_text(pieces: list[str], prefill: str = PREFILL) -> str:
    chunks = [chunk({"content": piece}) for piece in pieces] + [chunk({}, "stop")]
    _, events = run(chunks, StreamTranslator(context(prefill)))
    return "".join(block["text"] for block in blocks(events) if block["type"] == "text")


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["One, two, three, four"], " four"),  # llama-server: the echo and the first token in one chunk
        (["One, ", "two, three,", " four", ", five"], " four, five"),  # the echo split over chunks
        (["One, two, three,", " four"], " four"),
        ([" four, five"], " four, five"),  # a server that does not repeat it (vLLM)
        (["One, two", " and more"], "One, two and more"),  # a partial match is given back
        (["One"], "One"),  # an answer that is a prefix of the prefill is the answer
    ],
)
def test_the_streamed_echo_is_removed_however_it_is_chunked(pieces, expected):
    assert streamed_text(pieces) == expected


def test_without_a_prefill_nothing_is_held_back():
    assert streamed_text(["One, two, three, four"], prefill="") == "One, two, three, four"


def test_only_the_start_of_the_answer_is_an_echo():
    echo = PrefillEcho("ab")
    assert [echo.feed("x"), echo.feed("ab"), echo.flush()] == ["x", "ab", ""]


def test_an_echo_before_a_tool_call_leaves_the_call_alone():
    chunks = [
        chunk({"content": PREFILL}),
        chunk({"tool_calls": [tc(0, "c1", "Read", '{"file_path":"/a"}')]}),
        chunk({}, "tool_calls"),
    ]
    _, events = run(chunks, StreamTranslator(context()))
    assert [block["type"] for block in blocks(events)] == ["tool_use"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [("One, two, three, four", " four"), (" four", " four"), ("Two", "Two")],
)
def test_the_non_streaming_echo_is_removed(content, expected):
    completion = {"choices": [{"index": 0, "message": {"content": content}, "finish_reason": "stop"}]}
    message = completion_to_message(completion, context())
    assert message["content"] == [{"type": "text", "text": expected}]


def body(messages: list[dict]) -> dict:
    return {"model": "claude-sonnet-5", "max_tokens": 10, "messages": messages}


@pytest.mark.parametrize(
    ("style", "continues"), [("chat_template_kwargs", True), ("reasoning_effort", False), ("none", False)]
)
def test_the_backend_is_asked_to_continue_the_final_message(style, continues):
    messages = [{"role": "user", "content": "Count."}, {"role": "assistant", "content": PREFILL}]
    translated = translate_request(body(messages), "m", BackendProfile(thinking_style=style))
    assert translated.prefill == PREFILL
    assert translated.body["messages"][-1] == {"role": "assistant", "content": PREFILL}
    sent = {key: translated.body.get(key) for key in ("continue_final_message", "add_generation_prompt")}
    expected = {"continue_final_message": True, "add_generation_prompt": False}
    assert sent == (expected if continues else {key: None for key in expected})


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Count."}],
        [
            {"role": "user", "content": "Read it."},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]},
        ],
    ],
)
def test_a_request_that_ends_with_the_user_is_no_prefill(messages):
    translated = translate_request(body(messages), "m", BackendProfile())
    assert translated.prefill == "" and "continue_final_message" not in translated.body
