"""Anthropic content blocks -> OpenAI message parts (user side: text, images, documents, tool results)."""

from __future__ import annotations

from proxy.translate.jsonvalues import object_member
from proxy.translate.sharedtext import join_text
from proxy.translate.tools import openai_tool_name

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def system_text(system: object, dropped: list[str]) -> str:
    """The top-level `system` as one string: text blocks joined by a blank line.

    Claude Code's attribution block (`x-anthropic-billing-header: …cch=<nonce>`) changes on every request
    and would make every prompt miss the backend's prefix cache, so it is dropped.
    """
    if isinstance(system, str):
        return system
    texts: list[str] = []
    for block in system if isinstance(system, list) else []:
        if not isinstance(block, dict):
            continue
        if "cache_control" in block:
            dropped.append("cache_control")
        text = block.get("text")
        if block.get("type", "text") != "text" or not isinstance(text, str):
            dropped.append(f"system:{block.get('type')}")
        elif text.startswith(BILLING_HEADER_PREFIX):
            dropped.append("x-anthropic-billing-header")
        elif text:
            texts.append(text)
    return join_text("\n\n", texts)


def _image_part(source: object, dropped: list[str]) -> dict:
    source = source if isinstance(source, dict) else {}
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type") or "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{source['data']}"}}
    if kind == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    dropped.append(f"image:{kind}")
    return text_part(f"[image omitted: {kind} image sources are not supported by this backend]")


def _document_parts(block: dict, dropped: list[str]) -> list[dict]:
    source = object_member(block, "source")
    kind = source.get("type")
    header = "\n".join(str(block[key]) for key in ("title", "context") if isinstance(block.get(key), str))
    if kind == "text" and isinstance(source.get("data"), str):
        return [text_part(f"{header}\n\n{source['data']}" if header else source["data"])]
    if kind == "content":
        inner = source.get("content")
        blocks = [{"type": "text", "text": inner}] if isinstance(inner, str) else inner
        parts = [text_part(header)] if header else []
        for item in blocks if isinstance(blocks, list) else []:
            parts.extend(user_parts(item, dropped))
        return parts
    media = source.get("media_type") or kind or "unknown"
    dropped.append(f"document:{media}")
    return [text_part(f"[document omitted: {media} not supported by this backend]")]


def _search_result_text(block: dict) -> str:
    lines = [str(block.get(key)) for key in ("title", "source") if isinstance(block.get(key), str)]
    for item in block.get("content") or []:
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            lines.append(item["text"])
    return "\n".join(lines)


def context_block_text(block: dict) -> str | None:
    """Text for blocks that carry conversation context in a form no OpenAI server knows: a compaction summary
    (Claude Code's context compaction), and tool additions/removals announced in a mid-conversation system
    message. None for other blocks (and for a compaction that holds only encrypted content)."""
    kind = block.get("type")
    if kind == "compaction":
        content = block.get("content")
        return content if isinstance(content, str) and content else None
    if kind in ("tool_addition", "tool_removal"):
        tool = object_member(block, "tool")
        name = tool.get("name") or tool.get("tool_name")
        if isinstance(name, str) and name:  # the name the model calls it by (over 64 characters: shortened)
            return (
                f"Tool now available: {openai_tool_name(name)}"
                if kind == "tool_addition"
                else f"Tool no longer available: {openai_tool_name(name)}"
            )
    return None


def user_parts(block: object, dropped: list[str]) -> list[dict]:
    """One user-side content block -> OpenAI content parts (empty list = nothing to send)."""
    if not isinstance(block, dict):
        return []
    if "cache_control" in block:
        dropped.append("cache_control")
    if "citations" in block:
        dropped.append("citations")
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return [text_part(text)] if isinstance(text, str) and text else []
    if kind == "image":
        return [_image_part(block.get("source"), dropped)]
    if kind == "document":
        return _document_parts(block, dropped)
    if kind == "search_result":
        return [text_part(_search_result_text(block))]
    if kind == "tool_reference":
        referenced = block.get("tool_name") or block.get("name")
        if isinstance(referenced, str):
            return [text_part(f"Tool loaded: {openai_tool_name(referenced)}")]
    context = context_block_text(block)
    if context is not None:
        return [text_part(context)]
    dropped.append(str(kind))
    return []


def tool_result_content(block: dict, dropped: list[str]) -> tuple[str, list[dict]]:
    """A tool_result -> (text for the tool message, image parts that must travel in a user message)."""
    if "cache_control" in block:
        dropped.append("cache_control")
    content = block.get("content")
    texts: list[str] = []
    images: list[dict] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for item in content:
            for part in user_parts(item, dropped):
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    images.append(part)
    text = join_text("\n", texts)
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return text, images


TEXT_PART_SEPARATOR = "\n\n"


def compact_user_content(parts: list[dict]) -> str | list[dict]:
    """Text-only content becomes one string, parts joined by a blank line; only images need a parts list.

    Many chat templates (and servers that hand messages straight to `apply_chat_template`) build the prompt
    with `'…' + message.content` and fail on a list; a string works everywhere.
    """
    if all(part["type"] == "text" for part in parts):
        return join_text(TEXT_PART_SEPARATOR, [part["text"] for part in parts])
    return parts
