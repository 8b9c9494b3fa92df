"""What is kept with the translated messages of memoised turns (`sharedtext.shared_turn`): their JSON and their
token estimate, each made once.

A turn translated from a message Claude Code resends is the very same message object on every later turn, so
what the request derives from it (the JSON sent to the backend, the prompt estimate read from that JSON) is the
same too. Messages are known by identity while their turn is in the memo (`remember`, `forget`); any other
message is serialised and estimated as usual. Known messages must not be written to, like the turns.
"""

from __future__ import annotations

import orjson


class KnownMessage:
    """A message of a memoised turn, with its JSON once it was serialised and its token estimate once made."""

    def __init__(self, message: dict) -> None:
        self.message = message
        self.json: bytes | None = None
        self.tokens: int | None = None


_known: dict[int, KnownMessage] = {}  # id -> the messages of the memoised turns (which keep them alive)


def remember(messages: list[dict]) -> None:
    """The messages of a turn that entered the memo."""
    for message in messages:
        _known[id(message)] = KnownMessage(message)


def forget(messages: list[dict]) -> None:
    """The messages of a turn that left the memo."""
    for message in messages:
        known = _known.get(id(message))
        if known is not None and known.message is message:
            del _known[id(message)]


def known_message(message: object) -> KnownMessage | None:
    """What is kept for `message` when it belongs to a memoised turn, else None."""
    known = _known.get(id(message))
    return known if known is not None and known.message is message else None


def message_json(message: object) -> bytes:
    """`orjson.dumps(message)`: serialised once for a message of a memoised turn (the same bytes object again, so
    its hash is computed once too), every time for any other."""
    known = known_message(message)
    if known is None:
        return orjson.dumps(message)
    if known.json is None:
        known.json = orjson.dumps(message)
    return known.json
