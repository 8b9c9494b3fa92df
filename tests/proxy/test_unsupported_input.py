"""Input the backend's model cannot take (an image for a text-only model) is the client's 400, not a 500 that
Claude Code would retry ten times with backoff."""

from __future__ import annotations

import json

import pytest

from proxy.translate.backend_errors import backend_error_to_anthropic

LLAMA_CPP = {
    "error": {
        "code": 500,
        "message": "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj",
        "type": "server_error",
    }
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, LLAMA_CPP),  # llama-server, as a real one answers (tests/e2e checks it live)
        (400, {"object": "error", "message": "Qwen/Qwen3-8B is not a multimodal model", "code": 400}),  # vLLM
        (400, {"error": "Model does not support images. Please use a model that does."}),  # LM Studio
        (500, "audio input is not supported"),
    ],
)
def test_unsupported_input_is_an_invalid_request(status, body):
    error = backend_error_to_anthropic(status, json.dumps(body) if isinstance(body, dict) else body, {})
    assert (error.status, error.error_type) == (400, "invalid_request_error")
    assert error.message.startswith("the backend's model cannot take this input: ")


def test_other_server_errors_stay_retryable():
    error = backend_error_to_anthropic(500, json.dumps({"error": {"message": "CUDA out of memory"}}), {})
    assert (error.status, error.error_type) == (500, "api_error")


def test_a_server_started_without_what_tools_need_is_a_400_naming_the_flag():
    """llama-server --no-jinja answers every request with tools like this (HTTP 500, checked live in tests/e2e)."""
    body = {"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}
    error = backend_error_to_anthropic(500, json.dumps(body), {})
    assert (error.status, error.error_type) == (400, "invalid_request_error")
    assert error.message == "the backend is not set up for this request: tools param requires --jinja flag"
    overloaded = backend_error_to_anthropic(429, json.dumps(body), {})
    assert overloaded.status == 429  # a rate limit stays a rate limit whatever its text
