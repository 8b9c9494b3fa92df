"""The OpenAI request body as sent: serialised once, in pieces the handler reuses and joins once.

`max_tokens` is left out (it is only known once the prompt has been sized, and is added by
`SerializedBody.with_member`), each message is serialised on its own (the prompt estimate reads those bytes instead
of serialising the messages a second time), and the tool list is spliced in from the JSON memoised with its
translation (Claude Code resends the same 30 KB of schemas every turn).

The pieces are only joined when the request is sent, with `max_tokens` in place: one copy of the ~50 KB body
instead of two (the body, then the body with `max_tokens` appended), and none of the message array (copied twice
when it was built as one piece). The small members are serialised by orjson in one call, with placeholders for
the messages and the tools that orjson can never write itself (a raw control byte), so key order, escaping and
errors stay orjson's. The joined result is byte for byte `orjson.dumps` of the body, with the member appended
last.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from proxy.translate.knownmessages import message_json as shared_message_json

_MESSAGES = b"\x00messages"  # orjson escapes every control character, so only a Fragment can write these
_TOOLS = b"\x00tools"


@dataclass
class SerializedBody:
    pieces: list[bytes]  # the body's JSON without the left-out member, in order; the last ends with `}`
    size: int  # their total length
    message_json: list[bytes]  # each message's JSON, in order (some of the pieces)

    @property
    def rest(self) -> bytes:
        """The body's JSON without the left-out member, joined."""
        return b"".join(self.pieces)

    def with_member(self, key: str, value: object) -> bytes:
        """The body's JSON with the member `key: value` appended last: the one copy of the whole body."""
        member = orjson.dumps(key) + b":" + orjson.dumps(value)
        pieces = self.pieces.copy()
        last = pieces[-1]
        pieces[-1] = last[:-1]  # without its `}`
        if self.size > 2:  # not "{}"
            pieces.append(b",")
        pieces.append(member)
        pieces.append(b"}")
        return b"".join(pieces)


def serialize_body(openai_body: dict, leave_out: str, tools_json: bytes | None = None) -> SerializedBody:
    """`openai_body` as JSON pieces without the member `leave_out`; `tools_json` must be
    `orjson.dumps(body["tools"])`."""
    messages = openai_body.get("messages")
    message_json = [shared_message_json(m) for m in messages] if isinstance(messages, list) else []
    members = {k: v for k, v in openai_body.items() if k != leave_out}
    spliced: list[tuple[bytes, list[bytes]]] = []
    if isinstance(messages, list) and "messages" in members:
        members["messages"] = orjson.Fragment(_MESSAGES)
        array = [b"["]
        for index, item in enumerate(message_json):
            if index:
                array.append(b",")
            array.append(item)
        array.append(b"]")
        spliced.append((_MESSAGES, array))
    if tools_json is not None and "tools" in members:
        members["tools"] = orjson.Fragment(_TOOLS)
        spliced.append((_TOOLS, [tools_json]))
    frame = orjson.dumps(members)
    pieces: list[bytes] = []
    start = 0
    in_body_order = sorted((frame.index(mark), mark, inserted) for mark, inserted in spliced)
    for at, placeholder, inserted in in_body_order:
        pieces.append(frame[start:at])
        pieces.extend(inserted)
        start = at + len(placeholder)
    pieces.append(frame[start:])
    return SerializedBody(pieces, sum(len(piece) for piece in pieces), message_json)
