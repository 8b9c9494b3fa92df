"""OpenAI chat completion -> Anthropic Message (pure; no I/O).

Tool-argument policy: valid JSON passes; broken JSON is repaired with json_repair only when the result is
an object that keeps every property the tool's schema requires; anything else is never passed on as a
guessed input. Such a call becomes a text block saying what the model sent, and if no other tool call
survives, stop_reason is end_turn (Claude Code then shows the text instead of running a broken call).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.errors import AnthropicError
from proxy.translate.backend_errors import backend_error_to_anthropic, error_in_body
from proxy.translate.outcome import (
    content_text,
    cut_by_proxy,
    estimate_output_tokens,
    fabricate_signature,
    matched_stop_sequence,
    reasoning_of,
    split_think_tags,
    stop_reason_for,
    usage_from_openai,
)
from proxy.translate.prefill import strip_echo
from proxy.translate.textcalls import HEAD_CHARS, text_tool_call, text_tool_call_problem
from proxy.translate.tools import (
    compact_json,
    message_tool_id,
    parse_tool_arguments,
    unusable_call_text,
)

__all__ = ["ResponseContext", "backend_error_to_anthropic", "completion_to_message", "tool_use_blocks"]


@dataclass
class ResponseContext:
    requested_model: str
    tool_names: dict[str, str]  # OpenAI function name -> Anthropic tool name
    tool_schemas: dict[str, dict]  # Anthropic tool name -> input_schema
    stop_sequences: list[str]
    message_id: str  # "msg_..."
    input_tokens: int = 0  # best estimate for message_start (real usage replaces it)
    problems: list[str] = field(default_factory=list)  # filled by completion_to_message for logging
    prefill: str = ""  # the request's final assistant text, which llama.cpp repeats in its answer
    # whether this backend repeats the prefill (prefill.echoes_prefill): stripping it from a server that continues
    # without the repeat (vLLM, SGLang) would cut the real answer ("[" + "[1, 2]]" must not become "1, 2]]")
    prefill_echoed: bool = True
    lowered_max_tokens: bool = False  # the backend got a smaller max_tokens than the client asked for
    history_tool_ids: frozenset[str] = frozenset()  # tool_use ids the conversation has: new ones must differ


def _garbage(what: str) -> AnthropicError:
    return AnthropicError(502, "api_error", f"backend returned an unusable completion: {what}")


def tool_use_blocks(calls: list, ctx: ResponseContext, problems: list[str]) -> list[dict]:
    """Backend tool calls -> tool_use blocks (or explanatory text blocks for unusable arguments), with ids
    unique within the conversation as the stream makes them (`message_tool_id`)."""
    blocks: list[dict] = []
    used: set[str] = set(ctx.history_tool_ids)
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not function["name"]
        ):
            problems.append("backend sent a tool call without a function name; ignored")
            continue
        openai_name: str = function["name"]
        name = ctx.tool_names.get(openai_name, openai_name)
        raw = function.get("arguments")
        parsed = parse_tool_arguments(raw, name, ctx.tool_schemas.get(name))
        if parsed.problem:
            problems.append(parsed.problem)
        if parsed.input is None:
            blocks.append({"type": "text", "text": unusable_call_text(name, raw)})
            continue
        tool_id = message_tool_id(call.get("id"), used, problems)
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": parsed.input})
    return blocks


def completion_to_message(completion: object, ctx: ResponseContext) -> dict:
    """A non-streaming OpenAI completion -> an Anthropic Message. Raises AnthropicError 502 on garbage."""
    if not isinstance(completion, dict):
        raise _garbage("not a JSON object")
    if "error" in completion and "choices" not in completion:
        raise error_in_body(completion)
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _garbage("no choices")
    choice = choices[0]
    message = choice.get("message")
    if message is None:
        message = {}
    if not isinstance(message, dict):
        raise _garbage("choices[0].message is not an object")
    problems = ctx.problems
    text = strip_echo(ctx.prefill if ctx.prefill_echoed else "", content_text(message.get("content")))
    # <think> tags are removed from the text even beside a reasoning field: llama.cpp's deepseek-legacy format
    # sends the same reasoning both ways, and the field wins (as streamed)
    tagged, text = split_think_tags(text)
    thinking = reasoning_of(message) or tagged
    content: list[dict] = []
    if thinking:
        text = text.lstrip()
        content.append({"type": "thinking", "thinking": thinking, "signature": fabricate_signature(thinking)})
    stop_sequence = None
    if choice.get("finish_reason") in ("stop", None):
        candidates = [choice.get("stop_reason"), choice.get("stopping_word"), completion.get("stopping_word")]
        stop_sequence = matched_stop_sequence(candidates, text, ctx.stop_sequences)
        if stop_sequence and text.endswith(stop_sequence):
            text = text[: -len(stop_sequence)]
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else ""
    if text.strip() or refusal:
        content.append({"type": "text", "text": text if text.strip() else refusal})
    calls = message.get("tool_calls")
    if not isinstance(calls, list) and isinstance(message.get("function_call"), dict):
        calls = [{"function": message["function_call"]}]  # legacy single function_call
    content += tool_use_blocks(calls if isinstance(calls, list) else [], ctx, problems)
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    # the head only, as a stream is searched: the same answer gets the same advice either way
    if not has_tool_use and ctx.tool_names and (marker := text_tool_call(text[:HEAD_CHARS], ctx.tool_names)):
        problems.append(text_tool_call_problem(marker))
    finish = "content_filter" if refusal and not text.strip() else choice.get("finish_reason")
    stop_reason = stop_reason_for(finish, has_tool_use, stop_sequence)
    problems += cut_by_proxy(stop_reason, ctx.lowered_max_tokens)
    # the same characters the stream counts: thinking, text and each tool call's argument JSON
    chars = sum(len(block.get("thinking") or block.get("text") or "") for block in content)
    chars += sum(len(compact_json(block["input"])) for block in content if block["type"] == "tool_use")
    usage = usage_from_openai(completion.get("usage"), ctx.input_tokens, estimate_output_tokens(chars))
    return {
        "id": ctx.message_id,
        "type": "message",
        "role": "assistant",
        "model": ctx.requested_model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence if stop_reason == "stop_sequence" else None,
        "stop_details": None,
        "container": None,
        "usage": usage.as_dict(),
    }
