"""The shipped JSON Schemas accept good Anthropic objects and reject bad ones."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator

from harness.validation import load_schema, schema_problems, validator

SCHEMAS = [
    "message",
    "event_message_start",
    "event_content_block_start",
    "event_content_block_delta",
    "event_content_block_stop",
    "event_message_delta",
    "event_message_stop",
    "event_ping",
    "event_error",
    "error",
    "count_tokens",
    "models_list",
    "results",
]

MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-opus-5",
    "content": [
        {"type": "thinking", "thinking": "let me see", "signature": "abc"},
        {"type": "text", "text": "Okay", "citations": None},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"location": "Paris"},
            "caller": {"type": "direct"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "stop_details": None,
    "container": None,
    "usage": {
        "input_tokens": 472,
        "output_tokens": 89,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": None,
        "service_tier": "standard",
    },
}


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_is_valid_draft_2020_12(name):
    Draft202012Validator.check_schema(load_schema(name))
    assert load_schema(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_good_message_passes_and_unknown_fields_are_tolerated():
    assert schema_problems("message", MESSAGE) == []
    future = {**MESSAGE, "brand_new_field": {"x": 1}, "content": [*MESSAGE["content"], {"type": "new_block"}]}
    assert schema_problems("message", future) == []


def _broken(path: list, value=None, delete=False) -> dict:
    message = copy.deepcopy(MESSAGE)
    target = message
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return message


@pytest.mark.parametrize(
    "message",
    [
        _broken(["id"], delete=True),
        _broken(["usage"], delete=True),
        _broken(["role"], "user"),
        _broken(["type"], "msg"),
        _broken(["stop_reason"], "finished"),
        _broken(["usage", "output_tokens"], -1),
        _broken(["usage", "input_tokens"], "10"),
        _broken(["content", 1, "text"], None),
        _broken(["content", 2, "input"], '{"location": "Paris"}'),
        _broken(["content", 2, "id"], "functions.get_weather:0"),
        _broken(["content", 2, "name"], delete=True),
        _broken(["content", 0, "signature"], delete=True),
    ],
)
def test_bad_messages_are_rejected(message):
    assert schema_problems("message", message)


def test_event_schemas():
    assert validator("event_content_block_delta").is_valid(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}}
    )
    assert not validator("event_content_block_delta").is_valid(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "partial_json": "x"}}
    )
    assert not validator("event_content_block_delta").is_valid(
        {"type": "content_block_delta", "index": -1, "delta": {"type": "text_delta", "text": "x"}}
    )
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}},
    }
    assert validator("event_content_block_start").is_valid(start)
    start["content_block"]["input"] = {"file_path": "/a"}  # input must start empty and arrive as deltas
    assert not validator("event_content_block_start").is_valid(start)
    shell = {**MESSAGE, "content": [], "stop_reason": None}
    assert validator("event_message_start").is_valid({"type": "message_start", "message": shell})
    assert not validator("event_message_start").is_valid(
        {"type": "message_start", "message": {**shell, "stop_reason": "end_turn"}}
    )
    assert validator("event_message_delta").is_valid(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        }
    )
    assert not validator("event_message_delta").is_valid(
        {"type": "message_delta", "delta": {"stop_reason": "x"}, "usage": {"output_tokens": 3}}
    )
    assert validator("event_ping").is_valid({"type": "ping"})
    assert validator("event_error").is_valid(
        {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}
    )
    assert not validator("event_error").is_valid({"type": "error", "error": {"type": "oops", "message": "x"}})


def test_error_count_tokens_and_models_list():
    assert validator("error").is_valid(
        {"type": "error", "error": {"type": "not_found_error", "message": "nope"}, "request_id": "req_1"}
    )
    assert not validator("error").is_valid({"error": {"message": "nope"}})
    assert validator("count_tokens").is_valid({"input_tokens": 2095})
    assert not validator("count_tokens").is_valid({"input_tokens": 1.5})
    assert not validator("count_tokens").is_valid({"tokens": 3})
    page = {
        "data": [
            {"type": "model", "id": "claude-x", "display_name": "X", "created_at": "2026-01-01T00:00:00Z"}
        ],
        "first_id": "claude-x",
        "last_id": "claude-x",
        "has_more": False,
    }
    assert validator("models_list").is_valid(page)
    assert not validator("models_list").is_valid({"data": [{"id": "x"}], "has_more": False})
