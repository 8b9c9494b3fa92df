"""OpenAI chat.completion chunks for the fake backend: built from Anthropic-style content blocks, and folded
back into the equivalent non-streaming completion, so a test states what the model says once."""

from __future__ import annotations

import orjson

Chunk = (
    dict | bytes
)  # a dict is sent as `data: <json>`; bytes are written verbatim (garbage, raw Anthropic SSE)


def chunk(delta: dict | None = None, finish_reason: str | None = None, *, model: str = "fake-model") -> dict:
    """One OpenAI chat.completion.chunk with a single choice."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt_tokens: int = 10, completion_tokens: int = 5, *, model: str = "fake-model") -> dict:
    """The trailing `choices: []` chunk that stream_options.include_usage produces."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def chunks_from_blocks(
    blocks: list[dict],
    *,
    piece: int = 16,
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = (10, 5),
    model: str = "fake-model",
) -> list[dict]:
    """OpenAI chunks for Anthropic-style content blocks: text -> content, thinking -> reasoning_content,
    tool_use -> tool_calls (arguments streamed in `piece`-sized fragments, parallel calls by index)."""
    out: list[dict] = [chunk({"role": "assistant", "content": ""}, model=model)]
    tool_index = 0
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            out += [chunk({"content": p}, model=model) for p in _pieces(block["text"], piece)]
        elif kind == "thinking":
            out += [chunk({"reasoning_content": p}, model=model) for p in _pieces(block["thinking"], piece)]
        elif kind == "tool_use":
            call_id = block.get("id") or f"call_{tool_index}"
            head = {"index": tool_index, "id": call_id, "type": "function"}
            out.append(
                chunk(
                    {"tool_calls": [{**head, "function": {"name": block["name"], "arguments": ""}}]},
                    model=model,
                )
            )
            arguments = orjson.dumps(block.get("input", {})).decode()
            for p in _pieces(arguments, piece):
                out.append(
                    chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": p}}]}, model=model)
                )
            tool_index += 1
        else:
            raise ValueError(f"chunks_from_blocks: unsupported block type {kind!r}")
    reason = finish_reason or ("tool_calls" if tool_index else "stop")
    out.append(chunk({}, reason, model=model))
    if usage is not None:
        out.append(usage_chunk(*usage, model=model))
    return out


def completion_from_chunks(chunks: list[Chunk], *, model: str = "fake-model") -> dict:
    """Fold streamed chunks into the equivalent non-streaming chat.completion (bytes items are ignored)."""
    content, reasoning, finish = "", "", None
    calls: dict[int, dict] = {}
    usage = None
    for item in chunks:
        if not isinstance(item, dict):
            continue
        usage = item.get("usage") or usage
        for choice in item.get("choices") or []:
            delta = choice.get("delta") or {}
            content += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            finish = choice.get("finish_reason") or finish
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(
                    call.get("index", 0),
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.get("id") or slot["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
    message: dict = {"role": "assistant", "content": content or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish or "stop"}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
