"""The OpenAI request body as sent: serialised once, in pieces the handler reuses.

`max_tokens` is left out (it is only known once the prompt has been sized, and is appended with `with_member`),
each message is serialised on its own (the prompt estimate reads those bytes instead of serialising the messages a
second time), and the tool list is spliced in from the JSON memoised with its translation (Claude Code resends the
same 30 KB of schemas every turn). The result is byte for byte `orjson.dumps` of the body without `max_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass
class SerializedBody:
    rest: bytes  # the body's JSON without the max-tokens member
    message_json: list[bytes]  # each message's JSON, in order (pieces of `rest`)


def serialize_body(openai_body: dict, leave_out: str, tools_json: bytes | None = None) -> SerializedBody:
    """`openai_body` as JSON without the member `leave_out`; `tools_json` must be `orjson.dumps(body["tools"])`."""
    messages = openai_body.get("messages")
    message_json = [orjson.dumps(m) for m in messages] if isinstance(messages, list) else []
    members = {k: v for k, v in openai_body.items() if k != leave_out}
    if isinstance(messages, list) and "messages" in members:
        members["messages"] = orjson.Fragment(b"[" + b",".join(message_json) + b"]")
    if tools_json is not None and "tools" in members:
        members["tools"] = orjson.Fragment(tools_json)
    return SerializedBody(orjson.dumps(members), message_json)


def with_member(serialized_object: bytes, key: str, value: object) -> bytes:
    """A serialised JSON object with one more member appended, without serialising the object again."""
    member = orjson.dumps(key) + b":" + orjson.dumps(value)
    if serialized_object == b"{}":
        return b"{" + member + b"}"
    return b"".join((memoryview(serialized_object)[:-1], b",", member, b"}"))  # one copy of 50 KB, not two
