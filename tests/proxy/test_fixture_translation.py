"""Every real Claude Code 2.1.328 request through the translation layer, and its scripted answer back.

Request side: the translated OpenAI body has the shape strict backends demand. Response side: the
scripted assistant turn, served as an OpenAI stream (normal and tiny fragments) or completion, comes back
through StreamTranslator / completion_to_message and the official SDK's accumulator rebuilds it exactly.
"""

from __future__ import annotations

import json

import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent

from harness.llamacpp import chat_template_path
from proxy.translate.request import BackendProfile, translate_request, validate_messages_request
from proxy.translate.response import ResponseContext, completion_to_message
from proxy.translate.stream import StreamTranslator
from proxy.translate.tools import compact_json, openai_tool_name
from tests.support import captured_requests, scripted_turns

REQUESTS = captured_requests()
CHATML_TOOLS = chat_template_path()
# What strict templates (Qwen, Llama, SmolLM2, Mistral) enforce, written the way HF chat templates are.
STRICT_TEMPLATE = """
{%- for m in messages -%}
{%- if m.role == 'system' and not loop.first -%}{{ raise_exception('System message must be first') }}{%- endif -%}
{%- if m.content is not none and m.content is not string -%}{{ raise_exception('content must be a string') }}{%- endif -%}
{%- if m.role == 'tool' and (loop.first or messages[loop.index0 - 1].role not in ['assistant', 'tool']) -%}
{{ raise_exception('tool message must follow an assistant tool call') }}{%- endif -%}
{%- if not loop.first and m.role in ['user', 'assistant'] and messages[loop.index0 - 1].role == m.role -%}
{{ raise_exception('roles must alternate') }}{%- endif -%}
<|im_start|>{{ m.role }}
{{ m.content or '' }}{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.name }} {{ c.function.arguments }}</tool_call>{% endfor %}<|im_end|>
{% endfor -%}
<|im_start|>assistant
"""
IDS = [r.id for r in REQUESTS]
FORBIDDEN_KEYS = {
    "cache_control",
    "context_management",
    "$schema",
    "defer_loading",
    "thinking",
    "output_config",
}


def all_keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


def scripted_turn(request) -> list[dict]:
    return scripted_turns(request.scenario)[request.seq]


def translated(request):
    body = validate_messages_request(request.body)
    return translate_request(body, "backend-model", BackendProfile())


def context_for(tr) -> ResponseContext:
    return ResponseContext(
        tr.requested_model, tr.tool_names, tr.tool_schemas, tr.stop_sequences, "msg_test", 100
    )


def openai_calls(turn: list[dict]) -> list[dict]:
    calls = []
    for block in turn:
        if block["type"] == "tool_use":
            function = {"name": openai_tool_name(block["name"]), "arguments": compact_json(block["input"])}
            calls.append({"id": f"call_{len(calls)}", "type": "function", "function": function})
    return calls


def turn_text(turn: list[dict]) -> str:
    return "".join(b["text"] for b in turn if b["type"] == "text")


def split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def openai_chunks(turn: list[dict], size: int) -> list[dict]:
    """The scripted turn as OpenAI chunks, every string cut into `size`-character fragments."""
    chunks: list[dict] = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    for piece in split(turn_text(turn), size) if turn_text(turn) else []:
        chunks.append({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    for index, call in enumerate(openai_calls(turn)):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"]},
        }
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]})
        for piece in split(call["function"]["arguments"], size):
            fragment = {"index": index, "function": {"arguments": piece}}
            chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]})
    finish = "tool_calls" if openai_calls(turn) else "stop"
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    usage = {"prompt_tokens": 5000, "completion_tokens": 42, "prompt_tokens_details": {"cached_tokens": 4000}}
    chunks.append({"choices": [], "usage": usage})
    return chunks


def comparable(content: list) -> list[dict]:
    """Content blocks without ids (the scripted turns have none)."""
    out = []
    for block in content:
        block = block if isinstance(block, dict) else block.to_dict()
        if block["type"] == "text":
            out.append({"type": "text", "text": block["text"]})
        elif block["type"] == "tool_use":
            out.append({"type": "tool_use", "name": block["name"], "input": block["input"]})
        else:
            out.append({"type": block["type"]})
    return out


@pytest.mark.parametrize("request_", REQUESTS, ids=IDS)
def test_translated_request_has_the_shape_strict_backends_need(request_):
    tr = translated(request_)
    messages = tr.body["messages"]
    assert [m["role"] for m in messages].count("system") == 1
    assert messages[0]["role"] == "system"
    assert "x-anthropic-billing-header" not in messages[0]["content"]
    assert not all_keys(tr.body) & FORBIDDEN_KEYS
    assert "context_management" in tr.dropped and "cache_control" in tr.dropped
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or not message.get("tool_calls"):
            continue
        ids = [call["id"] for call in message["tool_calls"]]
        answers = messages[i + 1 : i + 1 + len(ids)]
        assert [m["role"] for m in answers] == ["tool"] * len(ids)
        assert [m["tool_call_id"] for m in answers] == ids
        for call in message["tool_calls"]:
            json.loads(call["function"]["arguments"])
    for tool in request_.body["tools"]:
        assert tr.tool_names[openai_tool_name(tool["name"])] == tool["name"]
    assert all("$schema" not in t["function"]["parameters"] for t in tr.body["tools"])
    assert tr.body["stream"] is True and tr.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("request_", REQUESTS, ids=IDS)
def test_mid_conversation_system_text_lands_in_a_user_turn(request_):
    tr = translated(request_)
    system_texts = [
        block["text"] if isinstance(block, dict) else block
        for m in request_.body["messages"]
        if m["role"] == "system"
        for block in (m["content"] if isinstance(m["content"], list) else [m["content"]])
    ]
    assert system_texts
    user_json = json.dumps([m for m in tr.body["messages"] if m["role"] == "user"])
    for text in system_texts:
        assert json.dumps(f"<system-reminder>\n{text[:80]}")[1:-1] in user_json


def test_translation_is_deterministic_and_prefix_stable():
    """A later request of a session starts with the translated messages of the earlier one."""
    by_scenario: dict[str, list] = {}
    for request in REQUESTS:
        by_scenario.setdefault(request.scenario, []).append(translated(request).body["messages"])
    for runs in by_scenario.values():
        for earlier, later in zip(runs, runs[1:], strict=False):
            assert later[: len(earlier)] == earlier
    assert translated(REQUESTS[0]).body == translated(REQUESTS[0]).body


EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def accumulate(events: list[dict]):
    """Each event validated strictly against the SDK's types, then accumulated by the SDK's own code."""
    snapshot, bufs = None, {}
    for event in events:
        if event["type"] == "ping":  # the SDK's SSE layer drops pings before this point
            continue
        parsed = EVENT.validate_python(event)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


@pytest.mark.parametrize("size", [1000, 3, 1])
@pytest.mark.parametrize("request_", REQUESTS, ids=IDS)
def test_scripted_turn_streams_back_losslessly(request_, size):
    tr = translated(request_)
    turn = scripted_turn(request_)
    translator = StreamTranslator(context_for(tr))
    events = translator.start()
    for chunk in openai_chunks(turn, size):
        events += translator.feed(chunk)
    events += translator.finish()
    message = accumulate(events)
    assert comparable(message.content) == comparable(turn)
    expected_stop = "tool_use" if openai_calls(turn) else "end_turn"
    assert message.stop_reason == translator.stop_reason == expected_stop
    assert message.usage.output_tokens == 42
    assert events[-2]["usage"]["input_tokens"] == 1000
    assert events[-2]["usage"]["cache_read_input_tokens"] == 4000
    assert translator.problems == []


@pytest.mark.parametrize("request_", REQUESTS, ids=IDS)
def test_scripted_turn_completes_back_losslessly(request_):
    tr = translated(request_)
    turn = scripted_turn(request_)
    calls = openai_calls(turn)
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": turn_text(turn) or None,
                    "tool_calls": calls or None,
                },
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 7},
    }
    message = completion_to_message(completion, context_for(tr))
    Message.model_validate(message)  # the SDK's own type accepts the non-streaming answer
    assert comparable(message["content"]) == comparable(turn)
    assert message["stop_reason"] == ("tool_use" if calls else "end_turn")
    assert message["usage"] == {
        "input_tokens": 300,
        "output_tokens": 7,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    assert [b["id"] for b in message["content"] if b["type"] == "tool_use"] == [c["id"] for c in calls]


def render(template_text: str, openai_body: dict) -> str:
    """Render like transformers' apply_chat_template does (sandboxed Jinja, raise_exception)."""
    jinja2 = pytest.importorskip("jinja2.sandbox")

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = jinja2.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(template_text)
    return template.render(
        messages=openai_body["messages"], tools=openai_body.get("tools"), add_generation_prompt=True
    )


@pytest.mark.parametrize("request_", REQUESTS, ids=IDS)
def test_strict_chat_templates_accept_the_translation(request_):
    body = translated(request_).body
    prompt = render(STRICT_TEMPLATE, body)
    assert prompt.count("<|im_start|>system") == 1
    tools_prompt = render(CHATML_TOOLS.read_text(), body)
    assert '"name": "Read"' in tools_prompt or "Read" in tools_prompt


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (
            [{"role": "user", "content": "u"}, {"role": "system", "content": "late"}],
            "System message must be first",
        ),
        ([{"role": "user", "content": [{"type": "text", "text": "u"}]}], "content must be a string"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "roles must alternate"),
        (
            [{"role": "user", "content": "a"}, {"role": "tool", "content": "r", "tool_call_id": "x"}],
            "tool message",
        ),
    ],
)
def test_the_strict_template_rejects_what_strict_templates_reject(messages, error):
    """The control for the test above: these shapes are what strict chat templates refuse."""
    with pytest.raises(ValueError, match=error):
        render(STRICT_TEMPLATE, {"messages": messages})
