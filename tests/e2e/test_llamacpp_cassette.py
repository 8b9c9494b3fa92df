"""Replay a real llama-server session (tests/cassettes/llamacpp_smollm2.yaml) through the proxy, with no server.

Fast and always on: real llama.cpp output (its chunk shapes, usage with cached tokens, `timings`, finish
reasons) must come out of the proxy as valid Anthropic messages and streams, parsed by the official SDK.
Re-record with `python -m tests.e2e.record_llamacpp_cassette`.
"""

from __future__ import annotations

import json

import yaml

from harness.live import running_proxy
from harness.validation import message_problems
from proxy.config import Config
from tests.e2e.llamacpp_support import CASSETTE, cassette_vcr
from tests.e2e.record_llamacpp_cassette import exercise_proxy

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def recorded_interactions(path: str) -> list[dict]:
    return yaml.safe_load(CASSETTE.read_text())["interactions"]


def openai_outcome(interaction: dict) -> dict:
    """What llama-server answered: text, tool calls, finish reason and usage, from either response form."""
    raw = interaction["response"]["body"]["string"]
    request = json.loads(interaction["request"]["body"])
    if not request.get("stream"):
        body = json.loads(raw)
        choice = body["choices"][0]
        message = choice["message"]
        return {"text": message.get("content") or "", "tools": [c["function"]["name"] for c in message.get("tool_calls") or []],
                "finish": choice["finish_reason"], "usage": body["usage"]}  # fmt: skip
    text, tools, finish, usage = "", [], None, None
    for line in raw.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            tools += [
                c["function"]["name"]
                for c in delta.get("tool_calls") or []
                if c.get("function", {}).get("name")
            ]
            finish = choice.get("finish_reason") or finish
    return {"text": text, "tools": tools, "finish": finish, "usage": usage}


def test_cassette_holds_real_llama_cpp_traffic_and_no_secrets() -> None:
    text = CASSETTE.read_text()
    assert "sk-ant" not in text and "x-api-key" not in text.lower()
    paths = [i["request"]["uri"].split("/", 3)[-1] for i in recorded_interactions(str(CASSETTE))]
    assert "v1/chat/completions" in paths and "tokenize" in paths and "props" in paths
    assert "llama.cpp" in text  # the Server header: recorded from the real server


async def test_replayed_session_translates_to_valid_anthropic_messages() -> None:
    chats = [
        i for i in recorded_interactions(str(CASSETTE)) if i["request"]["uri"].endswith("/chat/completions")
    ]
    expected = [openai_outcome(i) for i in chats]
    tokenized = next(
        i for i in recorded_interactions(str(CASSETTE)) if i["request"]["uri"].endswith("/tokenize")
    )
    llama_count = len(json.loads(tokenized["response"]["body"]["string"])["tokens"])
    seen: list = []
    with cassette_vcr("none").use_cassette(str(CASSETTE)) as cassette:
        # Port 9 (discard): nothing listens there; every upstream call must come from the cassette.
        async with running_proxy(
            Config(upstream="http://127.0.0.1:9/v1", thinking="none"), seen
        ) as proxy_url:
            count, messages = await exercise_proxy(proxy_url)
        played = {request.path for i, request in enumerate(cassette.requests) if cassette.play_counts[i]}
        assert {"/v1/chat/completions", "/tokenize"} <= played  # the answers came from the recording
        assert sum(
            cassette.play_counts[i]
            for i, r in enumerate(cassette.requests)
            if r.path.endswith("/completions")
        ) == len(chats)
    assert count == llama_count  # count_tokens answered with llama.cpp's own tokenizer count
    assert [s.stream for s in seen] == [json.loads(c["request"]["body"]).get("stream", False) for c in chats]
    assert all(s.status == 200 and s.error_type is None for s in seen)
    assert len(messages) == len(expected)
    for message, want in zip(messages, expected, strict=True):
        assert message_problems(message.model_dump(mode="json")) == []
        text = "".join(b.text for b in message.content if b.type == "text")
        tools = [b.name for b in message.content if b.type == "tool_use"]
        assert tools == want["tools"]
        assert text.strip() == want["text"].strip() or (not want["text"].strip() and not text)
        assert message.stop_reason == STOP_REASONS[want["finish"]]
        usage = message.usage
        assert usage.output_tokens == want["usage"]["completion_tokens"]
        assert usage.input_tokens + (usage.cache_read_input_tokens or 0) == want["usage"]["prompt_tokens"]
