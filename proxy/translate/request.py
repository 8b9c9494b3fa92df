"""Anthropic Messages request -> OpenAI Chat Completions request (pure; no I/O).

Deterministic by design: the same Anthropic history always yields byte-identical OpenAI messages, so a
growing conversation keeps hitting the backend's prefix cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.translate.content import (
    compact_user_content,
    context_block_text,
    system_text,
    text_part,
    tool_result_content,
    user_parts,
)
from proxy.translate.params import (
    MAX_OPENAI_STOP,
    BackendProfile,
    requested_stop_sequences,
    response_format,
    sampling_params,
    thinking_params,
    tool_choice_params,
)
from proxy.translate.prefill import CONTINUE_PARAMS, prefill_text
from proxy.translate.sharedtext import join_text, shared_block, shared_compact_json, shared_turn
from proxy.translate.tools import openai_tool_name, sanitize_tool_id, translate_tools
from proxy.translate.validate import MESSAGE_ROLES, validate_messages_request

__all__ = [
    "MAX_OPENAI_STOP",
    "BackendProfile",
    "TranslatedRequest",
    "translate_request",
    "validate_messages_request",
]

# Where the text of a mid-conversation `role:"system"` message goes. Strict chat templates (ChatML, Llama,
# Qwen, SmolLM2) raise on a system message that is not first, and folding it into the leading system message
# would lose its position and change the cached prefix. Anthropic only allows such a message right after a
# user turn, so "previous_user" appends it to that user turn: the exact position, and a prefix that stays
# identical when the conversation grows. "next_user" prepends it to the following user turn instead.
SYSTEM_MESSAGE_PLACEMENT = "previous_user"  # "previous_user" | "next_user"
NO_RESULT_TEXT = "[no result]"
IMAGES_BELOW_TEXT = "[image: in the next user message]"  # tool messages carry text only

# Top-level fields translated below; anything else is consumed and reported by name.
TRANSLATED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "output_format",
    }
)


@dataclass
class TranslatedRequest:
    body: dict
    requested_model: str
    stream: bool
    tool_names: dict[str, str]  # OpenAI function name -> Anthropic tool name
    tool_schemas: dict[str, dict]  # Anthropic tool name -> input_schema
    stop_sequences: list[str]
    dropped: list[str]  # features consumed or dropped, deduplicated names
    tool_tokens: int = 0  # the tools' share of the prompt estimate (tokens.estimate_tool_tokens)
    tools_json: bytes | None = None  # orjson.dumps(body["tools"]), memoised with the tool translation
    prefill: str = ""  # the final assistant message's text, when the request ends with one (prefill.py)
    tool_ids: frozenset[str] = frozenset()  # the ids of the history's tool calls


class _Turn:
    """A normalised Anthropic turn: consecutive same-role messages merged, system text attached. A turn that is
    one message alone keeps it as `source` and builds its blocks only when asked: the memoised translation of a
    resent message (`shared_turn`) never needs them."""

    def __init__(self, role: str, blocks: list[dict] | None, source: dict | None = None) -> None:
        self.role = role
        self._blocks = blocks
        self.source = source

    @property
    def blocks(self) -> list[dict]:
        if self._blocks is None:
            self._blocks = _blocks(self.source.get("content")) if self.source is not None else []
        return self._blocks

    def add(self, blocks: list[dict]) -> None:
        """More blocks (a merged message, system text): the turn is no longer one message alone."""
        self.blocks.extend(blocks)
        self.source = None


def _blocks(content: object) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _reminder(message: dict, dropped: list[str]) -> dict | None:
    texts = [
        p["text"]
        for b in _blocks(message.get("content"))
        for p in user_parts(b, dropped)
        if p["type"] == "text"
    ]
    text = "\n\n".join(t for t in texts if t)
    return {"type": "text", "text": f"<system-reminder>\n{text}\n</system-reminder>"} if text else None


def _normalise_turns(messages: list[dict], dropped: list[str]) -> list[_Turn]:
    """Merge same-role runs (Anthropic does this server-side) and place role:"system" text in a user turn."""
    turns: list[_Turn] = []
    pending: list[dict] = []  # system text waiting for the next user turn
    for message in messages:
        role = message["role"]
        if role not in MESSAGE_ROLES:  # a role from a newer client: its content is context from the user side
            dropped.append(f"role:{role}")
            role = "user"
        if role == "system":
            dropped.append("role:system")
            block = shared_block(message, _reminder, dropped)
            if block is None:
                continue
            if SYSTEM_MESSAGE_PLACEMENT == "previous_user" and turns and turns[-1].role == "user":
                turns[-1].add([block])
            else:
                pending.append(block)
            continue
        blocks: list[dict] | None = None  # None: the message alone, its blocks built when needed
        if role == "user" and pending:
            blocks, pending = pending + _blocks(message.get("content")), []
        elif role != message["role"]:
            blocks = _blocks(message.get("content"))
        if turns and turns[-1].role == role:
            turns[-1].add(blocks if blocks is not None else _blocks(message.get("content")))
        else:
            turns.append(_Turn(role, blocks, message if blocks is None else None))
    if pending:
        last_user = next((t for t in reversed(turns) if t.role == "user"), None)
        if last_user is not None and turns[-1] is last_user:
            last_user.add(pending)
        else:
            turns.append(_Turn("user", pending))
    return turns


def _assistant_message(blocks: list[dict], profile: BackendProfile, dropped: list[str]) -> dict:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict] = []
    for block in blocks:
        kind = block.get("type")
        if "cache_control" in block:
            dropped.append("cache_control")
        if kind == "text":
            if block.get("text"):
                texts.append(block["text"])
        elif kind == "tool_use":
            call_id = sanitize_tool_id(block["id"])
            arguments = shared_compact_json(block["input"])
            function = {"name": openai_tool_name(block["name"]), "arguments": arguments}
            calls.append({"id": call_id, "type": "function", "function": function})
        elif kind == "thinking" and profile.send_reasoning_back:
            if block.get("thinking"):
                reasoning.append(block["thinking"])
        elif (context := context_block_text(block)) is not None:
            texts.append(context)
        else:
            dropped.append(str(kind))
    message: dict = {
        "role": "assistant",
        "content": join_text("\n\n", texts) if texts else (None if calls else ""),
    }
    if reasoning:
        message["reasoning_content"] = "\n\n".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def _user_messages(blocks: list[dict], open_calls: list[str], dropped: list[str]) -> list[dict]:
    """One user turn -> tool messages (answering `open_calls`, in call order) then one user message."""
    results: dict[str, dict] = {}
    parts: list[dict] = []
    orphans: list[dict] = []
    for block in blocks:
        if block.get("type") != "tool_result":
            parts.extend(user_parts(block, dropped))
            continue
        call_id = sanitize_tool_id(block["tool_use_id"])
        if call_id in open_calls and call_id not in results:
            results[call_id] = block
        else:
            dropped.append("orphan_tool_result")
            orphans.append(block)
    out: list[dict] = []
    images: list[dict] = []
    for call_id in open_calls:
        if call_id not in results:
            dropped.append("missing_tool_result")
            out.append({"role": "tool", "tool_call_id": call_id, "content": NO_RESULT_TEXT})
            continue
        text, result_images = tool_result_content(results[call_id], dropped)
        if result_images and not text:  # an image-only result (Read of a PNG): say where the image went
            text = IMAGES_BELOW_TEXT
        out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        if result_images:
            images += [text_part(f"Images returned by tool call {call_id}:"), *result_images]
    for block in orphans:
        text, result_images = tool_result_content(block, dropped)
        images += [text_part(f"Result of tool call {block['tool_use_id']}:\n{text}"), *result_images]
    if images or parts:
        out.append({"role": "user", "content": compact_user_content(images + parts)})
    return out


def _merge_same_role(messages: list[dict]) -> list[dict]:
    """Strict templates reject two user (or assistant) messages in a row: merge such neighbours.

    Assistant neighbours only arise when a user turn translated to nothing; the first of them then has no
    tool_calls (those would have been answered by tool messages in between), so joining keeps the order.
    """
    out: list[dict] = []
    for message in messages:
        prev = out[-1] if out else None
        if prev is None or prev["role"] != message["role"] or message["role"] not in ("user", "assistant"):
            out.append(message)
            continue
        prev = out[-1] = dict(prev)  # a memoised translation may be shared (sharedtext.shared_turn)
        merged = _as_parts(prev.get("content")) + _as_parts(message.get("content"))
        if message["role"] == "user":
            prev["content"] = compact_user_content(merged)
            continue
        calls = prev.get("tool_calls", []) + message.get("tool_calls", [])
        prev["content"] = _join_text(merged) or (None if calls else "")
        if calls:
            prev["tool_calls"] = calls
    return out


def _as_parts(content: object) -> list[dict]:
    if isinstance(content, str):
        return [text_part(content)] if content else []
    return list(content) if isinstance(content, list) else []


def _join_text(parts: list[dict]) -> str:
    return join_text("\n\n", [p["text"] for p in parts if p.get("type") == "text"])


def _assistant_turn(turn: _Turn, profile: BackendProfile, dropped: list[str]) -> dict:
    """`_assistant_message` of the turn; memoised for a turn that is one shared message (Claude Code resends the
    whole history every turn)."""
    if turn.source is None:
        return _assistant_of_turn(turn, profile, dropped)
    variant = ("assistant", profile.send_reasoning_back)
    return shared_turn(turn.source, variant, dropped, _assistant_of_turn, turn, profile)


def _assistant_of_turn(turn: _Turn, profile: BackendProfile, dropped: list[str]) -> dict:
    return _assistant_message(turn.blocks, profile, dropped)


def _user_turn(turn: _Turn, open_calls: list[str], dropped: list[str]) -> list[dict]:
    """`_user_messages` of the turn answering `open_calls`; memoised like `_assistant_turn`."""
    if turn.source is None:
        return _user_of_turn(turn, open_calls, dropped)
    return shared_turn(turn.source, ("user", *open_calls), dropped, _user_of_turn, turn, open_calls)


def _user_of_turn(turn: _Turn, open_calls: list[str], dropped: list[str]) -> list[dict]:
    return _user_messages(turn.blocks, open_calls, dropped)


def translate_messages(body: dict, profile: BackendProfile, dropped: list[str]) -> list[dict]:
    """The OpenAI `messages`: one leading system message, then the conversation."""
    messages: list[dict] = []
    system = system_text(body.get("system"), dropped)
    if system:
        messages.append({"role": "system", "content": system})
    open_calls: list[str] = []
    for turn in _normalise_turns(body["messages"], dropped):
        if turn.role == "assistant":
            if open_calls:
                messages += _user_messages([], open_calls, dropped)
            message = _assistant_turn(turn, profile, dropped)
            open_calls = [call["id"] for call in message.get("tool_calls", [])]
            if message["content"] or open_calls or message.get("reasoning_content"):
                messages.append(message)  # a turn of only dropped blocks (e.g. thinking) says nothing
        else:
            messages += _user_turn(turn, open_calls, dropped)
            open_calls = []
    if open_calls:
        messages += _user_messages([], open_calls, dropped)
    return _merge_same_role(messages)


def translate_request(body: dict, backend_model: str, profile: BackendProfile) -> TranslatedRequest:
    """A validated Anthropic request -> the OpenAI /chat/completions request plus what the response needs."""
    dropped = [key for key in body if key not in TRANSLATED_FIELDS]
    tools = translate_tools(body.get("tools") or [], dropped)
    stream = body.get("stream") is True
    out: dict = {"model": backend_model, "messages": translate_messages(body, profile, dropped)}
    for message in out["messages"]:  # history calls to tools not offered now must still map back
        for call in message.get("tool_calls", []):
            name = call["function"]["name"]
            if name not in tools.tool_names:  # offered tools are known; only others need the history search
                tools.tool_names[name] = _history_name(body, name)
    out.update(sampling_params(body, profile, dropped))
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    if tools.functions:
        out["tools"] = tools.functions
        out.update(tool_choice_params(body.get("tool_choice"), tools.tool_names, dropped))
    elif body.get("tool_choice") is not None:
        dropped.append("tool_choice")
    out.update(thinking_params(body, profile, dropped))
    out.update(response_format(body))
    prefill = prefill_text(out["messages"])
    if prefill and profile.thinking_style == "chat_template_kwargs":  # servers that read template options
        out.update(CONTINUE_PARAMS)
    stops = requested_stop_sequences(body)
    return TranslatedRequest(
        body=out,
        requested_model=body["model"],
        stream=stream,
        tool_names=tools.tool_names,
        tool_schemas=tools.tool_schemas,
        stop_sequences=stops,
        dropped=list(dict.fromkeys(dropped)),  # deduplicated, in order
        tool_tokens=tools.prompt_tokens if tools.functions else 0,
        tools_json=tools.functions_json if tools.functions else None,
        prefill=prefill,
        tool_ids=history_tool_ids(out["messages"]),
    )


def history_tool_ids(messages: list[dict]) -> frozenset[str]:
    """The ids of the tool calls in translated history (the answer's new calls must not repeat them)."""
    return frozenset(
        call["id"]
        for message in messages
        if "tool_calls" in message
        for call in message["tool_calls"]
        if isinstance(call, dict) and isinstance(call.get("id"), str)
    )


def _history_name(body: dict, openai_name: str) -> str:
    """The Anthropic name behind an OpenAI name used in the history (tool_use blocks)."""
    for message in body.get("messages", []):
        for block in _blocks(message.get("content")):
            if block.get("type") == "tool_use" and openai_tool_name(block.get("name", "")) == openai_name:
                return block["name"]
    return openai_name
