"""Lone UTF-16 surrogate escapes (`"\\ud83d"`, half an emoji) in what Claude Code sends and what a model writes.

- Claude Code cuts long tool output at a character count, which can split an emoji, and then sends the half as
  an escape in every later turn. Such a body was a 400 "not valid JSON" (orjson refuses the escape), so the
  session could not go on; now the half becomes U+FFFD and the turn is translated.
- A model's tool-call arguments with such an escape were a 500 (non-streamed: the answer could not be encoded)
  or an "internal proxy error" event (streamed, when the arguments had to be repaired or were double-encoded).
  Now Claude Code gets the arguments as the model wrote them, the escape included.
"""

from __future__ import annotations

import json

import orjson
import pytest

from proxy.handlers import json_response
from proxy.sse import encode_events
from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.stream import StreamTranslator
from proxy.translate.surrogates import dump_json_text, loads_replacing_surrogates
from tests.proxy.conftest import RunningProxy
from tests.proxy.fake_backend import FakeBackend, Reply
from tests.proxy.request_helpers import assistant, body, tool_result, tool_use, user
from tests.proxy.stream_helpers import chunk

READ = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}
HALF = "\\ud83d"  # as JSON text: the high half of 😀 (U+1F600) with no low half after it
CUT_OUTPUT = (
    "build ok \ud83d"  # a tool's output cut after the first half of an emoji (a JS string can hold it)
)


def claude_code_bytes(value: object) -> bytes:
    """What Claude Code (JavaScript's JSON.stringify) sends: a lone surrogate as an escape, the rest UTF-8.
    Posted as raw bytes: the anthropic SDK (httpx) cannot encode a lone surrogate at all."""
    return json.dumps(value).encode()


def turn_after_a_cut_output(stream: bool) -> bytes:
    messages = [
        user("run the build"),
        assistant([tool_use("toolu_1")]),
        user([tool_result("toolu_1", CUT_OUTPUT)]),
    ]
    raw = claude_code_bytes(body(messages, stream=stream))
    assert HALF.encode() in raw
    return raw


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
async def test_a_turn_after_a_tool_output_cut_mid_emoji_is_translated(
    proxy: RunningProxy, backend: FakeBackend, stream: bool
) -> None:
    headers = {"Content-Type": "application/json"}
    response = await proxy.http.post(
        proxy.url + "/v1/messages", data=turn_after_a_cut_output(stream), headers=headers
    )
    text = await response.text()
    assert response.status == 200, text
    if stream:
        assert text.rstrip().endswith('data: {"type":"message_stop"}'), text
    else:
        assert json.loads(text)["type"] == "message"
    sent = backend.requests[-1].body["messages"]
    assert any(m.get("content") == "build ok \ufffd" for m in sent if m["role"] == "tool"), sent


async def test_the_same_turn_counts_its_tokens(proxy: RunningProxy) -> None:
    headers = {"Content-Type": "application/json"}
    response = await proxy.http.post(
        proxy.url + "/v1/messages/count_tokens", data=turn_after_a_cut_output(False), headers=headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["input_tokens"] > 0


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"model":"m","max_tokens":5,"messages":[],"x":"\\ud83d","y":NaN}', "not valid JSON"),
        (b'{"model":"m","max_tokens":5,"messages":[],"x":"\\ud83d","y":1e400}', "not valid JSON"),
        (b'{"model":"m","max_tokens":5,"messages":[],"x":"\\ud83d","y":[1,]}', "not valid JSON"),
        (b'{"model":"m","max_tokens":5,"messages":[],"x":"\\ud83d\xff"}', "not valid UTF-8"),
        (b'["\\ud83d"]', "not valid JSON"),
    ],
    ids=["nan", "beyond-a-double", "trailing-comma", "bad-utf8", "not-an-object"],
)
async def test_a_body_refused_for_more_than_a_lone_surrogate_is_still_a_400(
    proxy: RunningProxy, raw: bytes, says: str
) -> None:
    response = await proxy.http.post(
        proxy.url + "/v1/messages", data=raw, headers={"Content-Type": "application/json"}
    )
    answer = await response.json()
    assert response.status == 400 and answer["error"]["type"] == "invalid_request_error", answer
    assert says in answer["error"]["message"]


def test_the_fallback_reads_numbers_as_orjson_does() -> None:
    text = '{"big":123456789012345678901234,"top":18446744073709551615,"low":-9223372036854775809,"f":1.5}'
    assert loads_replacing_surrogates(text) == orjson.loads(text)
    assert loads_replacing_surrogates('{"pair":"\\ud83d\\ude00","half":"\\ude00"}') == {
        "pair": "\U0001f600",
        "half": "\ufffd",
    }
    for refused in ("NaN", "-Infinity", "1e400", "[1,]", "[" * 5000 + "]" * 5000):
        with pytest.raises(ValueError):
            loads_replacing_surrogates(refused)


def test_json_text_keeps_lone_surrogates_as_the_escapes_they_were() -> None:
    value = {"path": "/x\ud83dy", "é": "😀", "n": 2**70}
    text = dump_json_text(value)
    assert text == '{"path":"/x\\ud83dy","é":"😀","n":1180591620717411303424}'
    assert json.loads(text) == value
    text.encode("utf-8")  # raised UnicodeEncodeError when written raw


ARGUMENTS = [  # as the model wrote them (JSON text: `\ud83d` is an escape in it)
    r'{"file_path": "/x\ud83dy"}',  # valid JSON
    r'{"file_path": "/x\ud83dy"',  # cut off
    r'{"file_path": "/x\ud83dy",}',  # repaired
    r"{'file_path': '/x\ud83dy'}",  # repaired (single quotes)
    r'{"file_path": "/x\ud83d',  # cut off inside the string
    r'{"file_\ud83dpath": "/x"}',  # in a key
    json.dumps(r'{"file_path": "/x\ud83dy"}'),  # double-encoded
    r"file_path=\ud83d",  # unusable
]


def _context() -> ResponseContext:
    return ResponseContext("claude", {"Read": "Read"}, {"Read": READ}, [], "msg_x", 10)


@pytest.mark.parametrize("fragment", [None, 3, 7], ids=["whole", "by-3", "by-7"])
@pytest.mark.parametrize("arguments", ARGUMENTS)
def test_streamed_arguments_with_a_lone_surrogate_always_encode(arguments: str, fragment: int | None) -> None:
    translator = StreamTranslator(_context())
    events = translator.start()
    step = fragment or len(arguments)
    for start in range(0, len(arguments), step):
        function: dict = {"arguments": arguments[start : start + step]}
        call = {"index": 0, "function": function}
        if start == 0:
            call["id"], function["name"] = "c1", "Read"
        events += translator.feed(chunk({"tool_calls": [call]}))
    events += translator.feed(chunk({}, "tool_calls")) + translator.finish()
    encode_events(events)  # orjson.dumps raised "surrogates not allowed" for the repaired and double-encoded
    assert events[-1]["type"] == "message_stop"


@pytest.mark.parametrize("arguments", ARGUMENTS)
def test_a_whole_answer_with_such_arguments_always_encodes(arguments: str) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "Read", "arguments": arguments}}
    completion = {"choices": [{"index": 0, "message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    message = completion_to_message(completion, _context())
    response = json_response(message)  # raised UnicodeEncodeError: a 500 from the envelope middleware
    assert json.loads(response.body) == message


async def test_claude_code_gets_the_arguments_as_the_model_wrote_them(
    proxy: RunningProxy, backend: FakeBackend
):
    call = {"id": "c1", "type": "function", "function": {"name": "Read", "arguments": ARGUMENTS[0]}}
    completion = {
        "id": "c",
        "object": "chat.completion",
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    backend.push(Reply(completion=completion))
    message = await proxy.sdk().messages.create(
        model="claude-sonnet-5",
        max_tokens=50,
        messages=[{"role": "user", "content": "read it"}],
        tools=[{"name": "Read", "description": "read", "input_schema": READ}],
    )
    (block,) = message.content
    assert block.type == "tool_use" and block.input == {"file_path": "/x\ud83dy"}


async def test_a_lone_surrogate_nested_near_the_stack_limit_is_a_400_not_a_500(proxy: RunningProxy) -> None:
    """The fallback parse and the walk that replaces the half are both recursive: wherever one runs out of
    stack, the body is refused like any other that nests too deeply."""
    headers = {"Content-Type": "application/json"}
    for depth in range(880, 1001, 8):
        raw = (
            b'{"model":"m","max_tokens":5,"messages":[],"x":'
            + b"[" * depth
            + b'"\\ud83d"'
            + b"]" * depth
            + b"}"
        )
        response = await proxy.http.post(proxy.url + "/v1/messages", data=raw, headers=headers)
        answer = await response.json()
        assert response.status == 400, (depth, answer)
        assert answer["error"]["type"] == "invalid_request_error"
