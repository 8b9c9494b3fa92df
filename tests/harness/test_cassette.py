"""harness.cassette: vcrpy-compatible save/load, byte-exact bodies, SSE accumulation, clear load errors."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
import vcr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from harness.cassette import (
    Cassette,
    CassetteError,
    Interaction,
    load_cassette,
    parse_sse_message,
    request_class,
    save_cassette,
)
from proxy.sse import encode_events

URI = "http://127.0.0.1:8083/v1/messages?beta=true"


def stream_events(text: str = "Grüße, 日本 🎉", tool_input: dict | None = None) -> list[dict]:
    """A realistic Anthropic event sequence: thinking, text, tool_use split into JSON fragments."""
    tool_json = json.dumps(tool_input if tool_input is not None else {"file_path": "/workspace/project/a.py"})
    usage = {"input_tokens": 10, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage}  # fmt: skip
    return [
        {"type": "message_start", "message": message},
        {"type": "ping"},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": text[:3]}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": text[3:]}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}},
        },  # fmt: skip
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": tool_json[:5]},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": tool_json[5:]},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 7},
        },
        {"type": "message_stop"},
    ]


def make_interaction(
    seq: int, response_body: str, request_text: str = '{"model": "m", "stream": true}'
) -> Interaction:
    return Interaction(
        seq=seq,
        method="POST",
        uri=URI,
        request_headers={"content-type": "application/json", "x-api-key": "<redacted>"},
        request_body=json.loads(request_text),
        status=200,
        response_headers={"content-type": "text/event-stream", "request-id": "req_1"},
        response_body=response_body,
        meta={"request_class": "main", "event_times_ms": [0.0, 1.5]},
        request_text=request_text,
        status_message="OK",
    )


def test_save_then_load_keeps_everything(tmp_path: Path) -> None:
    sse = encode_events(stream_events()).decode()
    request_text = '{"model":"m",  "stream":true, "messages":[{"role":"user","content":"héllo"}]}'
    path = tmp_path / "c.yaml"
    save_cassette(
        Cassette(path, {"description": "d", "upstream": "scripted"}, [make_interaction(0, sse, request_text)])
    )

    loaded = load_cassette(path)
    (only,) = loaded.interactions
    assert only.response_body == sse
    assert only.request_text == request_text  # the exact text, odd spacing included
    assert only.request_body["messages"][0]["content"] == "héllo"
    assert only.path == "/v1/messages" and only.is_stream
    assert only.meta["event_times_ms"] == [0.0, 1.5] and only.meta["seq"] == 0
    assert loaded.meta["format"] == 1 and loaded.meta["description"] == "d"
    assert only.request_headers["x-api-key"] == "<redacted>"


def test_vcrpy_loads_what_we_save(tmp_path: Path) -> None:
    sse = encode_events(stream_events()).decode()
    path = tmp_path / "c.yaml"
    save_cassette(Cassette(path, {}, [make_interaction(0, sse), make_interaction(1, '{"type":"message"}')]))
    requests, responses = FilesystemPersister.load_cassette(path, yamlserializer)
    assert [r.method for r in requests] == ["POST", "POST"]
    assert requests[0].uri == URI
    assert responses[0]["body"]["string"] == sse.encode()
    assert responses[0]["status"]["code"] == 200


def test_request_body_edited_after_load_is_saved_as_edited(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    save_cassette(Cassette(path, {}, [make_interaction(0, "x")]))
    cassette = load_cassette(path)
    cassette.interactions[0].request_body["model"] = "other"
    save_cassette(cassette)
    assert load_cassette(path).interactions[0].request_body["model"] == "other"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
@example(body="a\r\nb\n")
@example(body="x\x85y\n")
@example(body="x\u2028y\n")
@example(body="\ufeffhi\n")
@example(body="trail  \nx\n")
@example(body="\tx\n")
@example(body="\x00\n")
@example(body="  lead\nx\n")
@example(body="a\n\n\n")
@example(body="#x\n- y\n")
@example(body="\U0010ffff\n")
def test_any_text_body_round_trips_byte_for_byte(tmp_path: Path, body: str) -> None:
    path = tmp_path / "h.yaml"
    save_cassette(Cassette(path, {}, [make_interaction(0, body), make_interaction(1, body + "\n\n")]))
    loaded = load_cassette(path)
    assert [i.response_body for i in loaded.interactions] == [body, body + "\n\n"]
    _, responses = FilesystemPersister.load_cassette(path, yamlserializer)
    assert responses[1]["body"]["string"] == (body + "\n\n").encode()


def test_parse_sse_message_accumulates_blocks() -> None:
    sse = encode_events(stream_events("Grüße, 日本 🎉", {"file_path": "/a", "n": [1, 2]})).decode()
    message = parse_sse_message(sse)
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    assert message["content"][1]["text"] == "Grüße, 日本 🎉"
    assert message["content"][2]["input"] == {"file_path": "/a", "n": [1, 2]}
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 10, "output_tokens": 7}


def test_parse_sse_message_raises_on_error_event_and_garbage() -> None:
    error = 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    with pytest.raises(CassetteError, match="overloaded_error: busy"):
        parse_sse_message(error)
    with pytest.raises(CassetteError, match="before message_start"):
        parse_sse_message('event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n')
    with pytest.raises(CassetteError, match="no message_start"):
        parse_sse_message("")
    with pytest.raises(CassetteError, match="invalid JSON"):
        parse_sse_message("event: ping\ndata: {nope\n\n")


def test_response_message_reads_json_bodies() -> None:
    interaction = make_interaction(0, '{"type": "message", "content": []}')
    interaction.response_headers["content-type"] = "application/json"
    assert interaction.response_message() == {"type": "message", "content": []}
    interaction.response_body = "not json"
    with pytest.raises(CassetteError, match="not JSON"):
        interaction.response_message()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("interactions: [\n", "not valid YAML"),
        ("- just a list\n", "not a vcrpy cassette"),
        ("version: 1\ninteractions: 3\n", "'interactions' must be a list"),
        (
            "version: 1\ninteractions:\n- request: {method: GET, uri: /}\n",
            r"interactions\[0\]: missing 'response'",
        ),
        (
            "version: 1\ninteractions:\n- request: {method: GET, uri: /}\n  response: {status: {code: OK}, body: {string: ''}}\n",
            "code: must be an integer",
        ),
    ],
)
def test_load_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CassetteError, match=message) as info:
        load_cassette(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="cassette not found: .*nope.yaml"):
        load_cassette(tmp_path / "nope.yaml")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "c.yaml"
    save_cassette(Cassette(path, {}, [make_interaction(0, "a")]))
    save_cassette(Cassette(path, {}, [make_interaction(0, "a"), make_interaction(1, "b")]))
    assert [p.name for p in path.parent.iterdir()] == ["c.yaml"]
    assert len(load_cassette(path).interactions) == 2


@pytest.mark.parametrize(
    ("path", "headers", "body", "expected"),
    [
        ("/v1/messages", {"x-claude-code-request-class": "Auxiliary"}, {"tools": [{}]}, "auxiliary"),
        ("/v1/messages/count_tokens", {}, {"tools": [{}]}, "count_tokens"),
        ("/v1/messages", {}, {"tools": [{"name": "Read"}]}, "main"),
        ("/v1/messages", {}, {"messages": []}, "auxiliary"),
        ("/v1/messages", {"x-claude-code-agent-id": "a1"}, {"tools": [{}]}, "subagent"),
        (
            "/v1/messages",
            {},
            {"tools": [{}], "system": [{"type": "text", "text": "cc_is_subagent=true;"}]},
            "subagent",
        ),
        ("/api/hello", {}, None, "other"),
    ],
)
def test_request_class(path: str, headers: dict, body: dict | None, expected: str) -> None:
    assert request_class(path, headers, body) == expected


async def test_vcrpy_replays_a_saved_interaction_with_aiohttp(tmp_path: Path) -> None:
    sse = encode_events(stream_events()).decode()
    path = tmp_path / "replay.yaml"
    save_cassette(Cassette(path, {}, [make_interaction(0, sse)]))
    with vcr.use_cassette(str(path), record_mode="none"):
        async with aiohttp.ClientSession() as session, session.post(URI, json={"model": "m"}) as response:
            assert response.status == 200
            body = await response.read()
    assert body.decode() == sse
    assert parse_sse_message(body.decode())["content"][1]["text"] == "Grüße, 日本 🎉"
