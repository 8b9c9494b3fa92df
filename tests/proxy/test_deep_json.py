"""JSON nested deeper than the serialisers and the interpreter's stack allow, in both directions.

orjson writes at most ~254 levels and the standard library's json recurses (about 1,000 levels), so a request
nested that deeply used to end in our 500, and a model emitting deeply nested tool arguments used to end its
stream with "internal proxy error". Requests get the client's 400; tool arguments are held to MAX_DEPTH levels
like any other invalid arguments.
"""

from __future__ import annotations

import json

import pytest

from proxy.translate.jsonprefix import MAX_DEPTH, JsonObjectPrefix, json_depth
from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.stream import StreamTranslator
from proxy.translate.tools import parse_tool_arguments
from tests.proxy.fake_backend import Reply, chunk, messages_body

DEEP = '"__deep__"'
SCHEMA = {"type": "object", "properties": {"a": {}}, "required": ["a"]}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def request_text(where: str, depth: int, stream: bool) -> str:
    """A request with `depth` nested arrays at one place (as text: the stdlib cannot even build it)."""
    hi = {"role": "user", "content": "hi"}
    body: dict = {"model": "m", "max_tokens": 10, "stream": stream, "messages": [hi]}
    if where == "tool_use_input":
        call = {"type": "tool_use", "id": "t1", "name": "X", "input": {"a": "__deep__"}}
        result = {"type": "tool_result", "tool_use_id": "t1", "content": "ok"}
        body["messages"] = [
            hi,
            {"role": "assistant", "content": [call]},
            {"role": "user", "content": [result]},
        ]
    elif where == "tool_schema":
        body["tools"] = [
            {"name": "X", "input_schema": {"type": "object", "properties": {"a": {"default": "__deep__"}}}}
        ]
    elif where == "output_schema":
        schema = {"type": "object", "properties": {"a": {"default": "__deep__"}}}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    return json.dumps(body).replace(DEEP, nested(depth))


@pytest.mark.parametrize("where", ["tool_use_input", "tool_schema", "output_schema"])
@pytest.mark.parametrize("route", ["/v1/messages", "/v1/messages?stream", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("depth", [20, 300, 1000])
async def test_deep_requests_are_answered_never_a_500(backend, proxy, where, route, depth):
    stream = route.endswith("?stream")
    path = route.removesuffix("?stream")
    text = request_text(where, depth, stream)
    if path.endswith("count_tokens"):
        body = json.loads(text) if depth < 500 else None
        text = (
            json.dumps({k: v for k, v in body.items() if k not in ("stream", "max_tokens")}) if body else text
        )
    response = await proxy.http.post(
        proxy.url + path, data=text, headers={"Content-Type": "application/json"}
    )
    answer = await response.read()
    assert response.status < 500, answer[:300]
    if depth <= 20:
        assert response.status == 200, answer[:300]
    elif response.status != 200:
        error = json.loads(answer)["error"]
        assert response.status == 400 and error["type"] == "invalid_request_error"
        assert "nests too deeply" in error["message"] or "not valid JSON" in error["message"]


@pytest.mark.parametrize("where", ["tool_schema", "tool_use_input"])
async def test_a_request_too_deep_to_serialise_names_the_reason(backend, proxy, where):
    text = request_text(where, 300, stream=False)
    response = await proxy.http.post(
        proxy.url + "/v1/messages", data=text, headers={"Content-Type": "application/json"}
    )
    body = await response.json()
    if where == "tool_use_input":  # sent on as a string of arguments: nothing re-serialises the nesting
        assert response.status == 200
    else:
        assert response.status == 400
        assert (
            body["error"]["message"]
            == "request JSON nests too deeply to translate (at most about 250 levels)"
        )


def _stream_call(arguments: str) -> tuple[list[dict], list[str]]:
    ctx = ResponseContext("claude", {"Write": "Write"}, {"Write": SCHEMA}, [], "msg_x", 10)
    translator = StreamTranslator(ctx)
    call = {"index": 0, "id": "c1", "function": {"name": "Write", "arguments": arguments}}
    events = translator.start()
    events += translator.feed({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    events += translator.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    events += translator.finish()
    return events, translator.problems


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH + 1, 5_000, 100_000])
def test_streamed_arguments_are_held_to_max_depth(depth):
    events, problems = _stream_call('{"a":' + nested(depth) + "}")
    assert events[-1]["type"] == "message_stop"  # no "internal proxy error"
    sent = "".join(e["delta"].get("partial_json", "") for e in events if e["type"] == "content_block_delta")
    value = json.loads(sent)
    assert isinstance(value, dict) and "a" in value
    assert json_depth(value) <= MAX_DEPTH
    if depth + 1 <= MAX_DEPTH:
        assert value == json.loads('{"a":' + nested(depth) + "}") and problems == []
    else:
        assert problems == [
            "tool Write: invalid JSON arguments mid-stream; kept the valid part and closed it"
        ]


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH + 1, 5_000])
def test_whole_answers_with_too_deep_arguments_become_a_text_block(depth):
    ctx = ResponseContext("claude", {"Write": "Write"}, {"Write": SCHEMA}, [], "msg_x", 10)
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "Write", "arguments": '{"a":' + nested(depth) + "}"},
    }
    completion = {"choices": [{"index": 0, "message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    message = completion_to_message(completion, ctx)
    kinds = [block["type"] for block in message["content"]]
    if depth + 1 <= MAX_DEPTH:
        assert kinds == ["tool_use"] and ctx.problems == []
    else:
        assert kinds == ["text"]
        assert "Write" in message["content"][0]["text"]
        assert len(ctx.problems) == 1


def test_parse_tool_arguments_names_the_depth():
    parsed = parse_tool_arguments('{"a":' + nested(MAX_DEPTH + 5) + "}", "Write", SCHEMA)
    assert parsed.input is None
    assert parsed.problem == f"tool Write: arguments nest deeper than {MAX_DEPTH} levels"


def test_the_automaton_rejects_the_first_bracket_past_max_depth():
    checker = JsonObjectPrefix()  # the object itself is level 1
    accepted, rejected = checker.feed('{"a":' + "[" * (MAX_DEPTH + 3))
    assert accepted == '{"a":' + "[" * (MAX_DEPTH - 1)
    assert rejected == "[" * 4
    assert checker.broken
    assert json_depth(json.loads(accepted + checker.closing_suffix())) == MAX_DEPTH


def test_json_depth_needs_no_recursion():
    value: list = []
    for _ in range(100_000):  # far beyond the interpreter's recursion limit
        value = [value]
    assert json_depth(value) == 100_001
    assert json_depth({"a": [1, {"b": []}], "c": 2}) == 4
    assert json_depth("text") == json_depth(3) == 0


async def test_the_sdk_accumulates_the_closed_deep_call(backend, proxy):
    """Through the app, read by the official SDK's stream helper (it parses every partial input as it comes):
    the 5,000-level call arrives as a tool_use whose input is an object no deeper than MAX_DEPTH."""
    deep = '{"command": "ls", "extra": ' + nested(5_000) + "}"
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": deep}}
    backend.reply = Reply(chunks=[chunk({"tool_calls": [call]}), chunk(finish_reason="tool_calls")])
    tool = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
    request = {**messages_body(), "tools": [tool]}
    request.pop("stream")
    async with proxy.sdk().messages.stream(**request) as stream:
        message = await stream.get_final_message()
    (block,) = message.content
    assert block.type == "tool_use" and block.input["command"] == "ls"
    assert json_depth(block.input) <= MAX_DEPTH
    assert message.stop_reason == "tool_use"
