"""Builders for the request-translation tests: Anthropic messages and blocks, and `tr` (validate, then
translate for a local model)."""

from __future__ import annotations

from proxy.translate.request import BackendProfile, translate_request, validate_messages_request

READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "$schema": {"type": "string"}},
        "required": ["file_path"],
    },
}


def body(messages, **extra):
    return {"model": "claude-sonnet-5", "max_tokens": 1000, "messages": messages, **extra}


def tr(b, profile=None):
    return translate_request(validate_messages_request(b), "local-model", profile or BackendProfile())


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


def tool_use(id_, name="Read", input_=None):
    return {"type": "tool_use", "id": id_, "name": name, "input": input_ or {"file_path": "/a"}}


def tool_result(id_, content="ok", **extra):
    return {"type": "tool_result", "tool_use_id": id_, "content": content, **extra}
