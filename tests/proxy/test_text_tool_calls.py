"""A tool call the backend left as text (its tool parser is off) is named in the proxy's log, once."""

from __future__ import annotations

import logging

from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.textcalls import PROBLEM_PREFIX, text_tool_call
from tests.proxy.conftest import RunningProxy
from tests.proxy.fake_backend import FakeBackend, Reply, chunks_from_blocks
from tests.proxy.stream_helpers import SCHEMA, chunk, make, run, tc

HERMES = '<tool_call>\n{"name": "Read", "arguments": {"file_path": "/w/a.py"}}\n</tool_call>'
TOOLS = [{"name": "Read", "description": "read a file", "input_schema": SCHEMA}]


def text_chunks(text: str, size: int = 5) -> list[dict]:
    return [chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)] + [chunk({}, "stop")]


def advice(problems: list[str]) -> list[str]:
    return [p for p in problems if p.startswith(PROBLEM_PREFIX)]


def test_the_stream_translator_spots_a_call_split_across_chunks():
    translator, events = run(text_chunks("Let me read it.\n" + HERMES))
    (problem,) = advice(translator.problems)
    assert problem.startswith(f"{PROBLEM_PREFIX} (<tool_call>): the server did not parse")
    assert "--tool-call-parser" in problem and "/w/a.py" not in problem  # no model output in the log
    assert events[-2]["delta"]["stop_reason"] == "end_turn"  # the answer itself is passed on unchanged


def test_no_advice_for_real_calls_plain_text_or_requests_without_tools():
    real_call = [
        chunk({"tool_calls": [tc(0, "call_1", "Read", '{"file_path": "a"}')]}),
        chunk({}, "tool_calls"),
    ]
    assert advice(run(real_call)[0].problems) == []
    assert advice(run(text_chunks("I will read the file first."))[0].problems) == []
    no_tools = make()
    no_tools.ctx.tool_names.clear()
    assert advice(run(text_chunks(HERMES), no_tools)[0].problems) == []


def test_only_the_head_of_the_text_is_searched_in_a_stream():
    """Scanning every text chunk of a long answer would cost every stream; a call comes first or soon."""
    assert advice(run(text_chunks("x" * 300 + HERMES, size=50))[0].problems) == []


def test_a_non_streaming_answer_gets_the_same_advice():
    ctx = ResponseContext("claude", {"Read": "Read"}, {"Read": SCHEMA}, [], "msg_1", 10)
    completion = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": HERMES}, "finish_reason": "stop"}
        ]
    }
    message = completion_to_message(completion, ctx)
    assert message["content"][0]["text"] == HERMES and message["stop_reason"] == "end_turn"
    assert len(advice(ctx.problems)) == 1
    later = ResponseContext("claude", {"Read": "Read"}, {"Read": SCHEMA}, [], "msg_2", 10)
    completion["choices"][0]["message"]["content"] = "x" * 300 + HERMES  # prose that mentions one later
    completion_to_message(completion, later)
    assert advice(later.problems) == []  # as in a stream: only the head is searched
    assert text_tool_call('{"name": "Read", "arguments": {}}', {"Read"}) == '{"name": "Read", …}'


async def test_the_proxy_warns_once_whatever_the_number_of_requests(start_proxy, caplog):
    caplog.set_level(logging.INFO)
    async with FakeBackend(Reply(chunks=chunks_from_blocks([{"type": "text", "text": HERMES}]))) as backend:
        proxy: RunningProxy = await start_proxy(upstream=backend.url)
        client = proxy.sdk()
        for _ in range(3):
            async with client.messages.stream(
                model="claude-sonnet-5",
                max_tokens=100,
                tools=TOOLS,
                messages=[{"role": "user", "content": "read a.py"}],
            ) as stream:
                message = await stream.get_final_message()
            assert message.content[0].text == HERMES  # passed on unchanged: no guessing at the model's intent
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and PROBLEM_PREFIX in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "--enable-auto-tool-choice --tool-call-parser" in warnings[0].getMessage()
