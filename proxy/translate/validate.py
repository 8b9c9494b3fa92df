"""Request validation: tolerant of schema drift, strict only where translation would otherwise break.

Claude Code changes its request shape weekly (new block types, new top-level fields, cache_control in new
places). Unknown things are accepted and dropped later; only what makes a request meaningless or
untranslatable gets a 400 naming the field.
"""

from __future__ import annotations

from proxy.errors import AnthropicError

MESSAGE_ROLES = ("user", "assistant", "system")  # others (Claude Code has sent "ctx", "msg") count as user
TOOL_CHOICE_TYPES = ("auto", "any", "tool", "none")


def _fail(path: str, problem: str) -> AnthropicError:
    return AnthropicError.invalid_request(f"{path}: {problem}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _block_problem(block: object) -> tuple[str, str] | None:
    """What is wrong with a content block, as (the path below the block, the problem), or None. Paths are only
    built for a failure: a Claude Code turn has hundreds of blocks, all of them fine."""
    if not isinstance(block, dict):
        return "", "content block must be an object"
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        return ".type", "content block needs a string `type`"
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not block["id"]:
            return ".id", "tool_use needs a string `id`"
        if not isinstance(block.get("name"), str) or not block["name"]:
            return ".name", "tool_use needs a string `name`"
        if not isinstance(block.get("input"), dict):
            return ".input", "tool_use `input` must be an object"
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str) or not block["tool_use_id"]:
            return ".tool_use_id", "tool_result needs a string `tool_use_id`"
        content = block.get("content")
        if content is not None and not isinstance(content, str | list):
            return ".content", "tool_result content must be a string or an array of blocks"
        if isinstance(content, list):
            for j, inner in enumerate(content):
                problem = _block_problem(inner)
                if problem is not None:
                    return f".content.{j}{problem[0]}", problem[1]
    elif kind == "text" and not isinstance(block.get("text"), str):
        return ".text", "text block needs a string `text`"
    return None


def _validate_messages(messages: object) -> None:
    if not isinstance(messages, list):
        raise _fail(
            "messages", "field required, must be an array" if messages is None else "must be an array"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _fail(f"messages.{i}", "message must be an object")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise _fail(
                f"messages.{i}.role", f"must be a role name such as {', '.join(MESSAGE_ROLES)}, got {role!r}"
            )
        content = message.get("content")
        if isinstance(content, list):
            for j, block in enumerate(content):
                problem = _block_problem(block)
                if problem is not None:
                    raise _fail(f"messages.{i}.content.{j}{problem[0]}", problem[1])
        elif not isinstance(content, str):
            raise _fail(f"messages.{i}.content", "must be a string or an array of content blocks")


def _validate_system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _fail("system", "must be a string or an array of text blocks")
    for i, block in enumerate(system):
        if not isinstance(block, dict):
            raise _fail(f"system.{i}", "system block must be an object")


def _validate_tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _fail("tools", "must be an array")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _fail(f"tools.{i}", "tool must be an object")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(f"tools.{i}.name", "tool needs a non-empty string `name`")
        schema = tool.get("input_schema")
        if schema is not None and not isinstance(schema, dict):
            raise _fail(f"tools.{i}.input_schema", "must be an object")


def _validate_tool_choice(choice: object) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise _fail("tool_choice", 'must be an object like {"type": "auto"}')
    kind = choice.get("type")
    if kind not in TOOL_CHOICE_TYPES:
        raise _fail("tool_choice.type", f"must be one of {', '.join(TOOL_CHOICE_TYPES)}, got {kind!r}")
    if kind == "tool" and (not isinstance(choice.get("name"), str) or not choice["name"]):
        raise _fail("tool_choice.name", "tool_choice of type `tool` needs a tool `name`")


def validate_messages_request(body: object, *, count_tokens: bool = False) -> dict:
    """Check what translation relies on; return the body unchanged. Raises AnthropicError 400."""
    if not isinstance(body, dict):
        raise AnthropicError.invalid_request("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("model", "field required, must be a non-empty string")
    if not count_tokens:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise _fail("max_tokens", "field required")
        if not _is_int(max_tokens) or max_tokens < 0:
            raise _fail("max_tokens", f"must be a non-negative integer, got {max_tokens!r}")
    _validate_messages(body.get("messages"))
    if not count_tokens and not body["messages"]:  # count_tokens may size the tools and system alone
        raise _fail("messages", "at least one message is required")
    _validate_system(body.get("system"))
    _validate_tools(body.get("tools"))
    _validate_tool_choice(body.get("tool_choice"))
    return body
