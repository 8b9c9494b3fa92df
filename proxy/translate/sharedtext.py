"""Translations of shared request pieces, memoised by the identity of what they were made from.

The body parser hands every request that resends a large message (or the system prompt) the very objects it
parsed the first time (proxy/bodyparse.py). Text joined from those objects would still be a new string on every
turn, and serialising a new string that is not pure ASCII means encoding it to UTF-8 again: for Claude Code's
~18 KB of system prompt and first message that was most of the cost of serialising the request. Returning the
very same joined string for the very same pieces lets orjson reuse the UTF-8 that CPython caches in it.

Entries are found by the pieces' identity (`proxy.textmemo.IdentityMemo`), and the same objects give the same
result because request bodies are never written to (tests/proxy/test_bodyparse.py holds translation to that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.bodyparse import is_shared_message
from proxy.textmemo import IdentityMemo
from proxy.translate.knownmessages import forget, remember
from proxy.translate.tools import compact_json

MIN_CHARS = 1024  # shorter results are cheaper to build again than to look up
MAX_ENTRIES = 1024
MAX_CHARS = 4 << 20  # characters held in results (the pieces are about as much again)


MAX_TURNS = 8192  # translated turns kept: the history of the sessions in flight, as the parser keeps it
MAX_TURN_SIZE = 16 << 20  # by `_turn_size`: their strings counted twice (as text, and in their kept JSON)
TURN_OVERHEAD = 256  # what `_turn_size` counts for the dicts of a turn besides its strings

_joins = IdentityMemo(MAX_ENTRIES, MAX_CHARS)
_json = IdentityMemo(MAX_ENTRIES, MAX_CHARS)
_blocks = IdentityMemo(MAX_ENTRIES, MAX_CHARS)


def _forget_turn(entry: tuple) -> None:
    """A memoised turn left the memo: its messages are no longer known."""
    forget(_messages_of(entry[0]))


_turns = IdentityMemo(MAX_TURNS, MAX_TURN_SIZE, on_evict=_forget_turn)


def shared_block(
    source: dict, build: Callable[[dict, list[str]], dict | None], dropped: list[str]
) -> dict | None:
    """`build(source, dropped)` for a large source message, the same block object (and the same notes added to
    `dropped`) again for the same source object. The block is shared, so it must be treated as read-only."""
    key = (id(source), build)
    hit = _blocks.get(key)
    if hit is not None:
        dropped.extend(hit[1])
        return hit[0]
    notes: list[str] = []
    block = build(source, notes)
    dropped.extend(notes)
    size = len(block["text"]) if block is not None and isinstance(block.get("text"), str) else 0
    if block is not None and size >= MIN_CHARS:
        _blocks.put(key, source, (block, tuple(notes)), size)
    return block


def join_text(separator: str, texts: list[str]) -> str:
    """`separator.join(texts)`; the same string object again for the same string objects."""
    if len(texts) < 2:
        return separator.join(texts)  # CPython returns a single str element itself
    key = (separator, *map(id, texts))
    joined = _joins.get(key)
    if joined is None:
        joined = separator.join(texts)
        if len(joined) >= MIN_CHARS:
            _joins.put(key, tuple(texts), joined, len(joined))
    return joined


def shared_compact_json(value: object) -> str:
    """`compact_json(value)`; the same string object again for the same (shared, never written) object."""
    key = (id(value),)
    text = _json.get(key)
    if text is None:
        text = compact_json(value)
        if len(text) >= MIN_CHARS:
            _json.put(key, value, text, len(text))
    return text


def shared_turn(
    source: dict, variant: tuple, dropped: list[str], build: Callable[..., Any], *args: object
) -> Any:
    """`build(*args, dropped)`: the translation of a turn made of the one message `source` alone. For a message
    the parser shares (`is_shared_message`: resent every turn as the same object), the same result (and the same
    notes added to `dropped`) again for the same source and `variant` (what else the translation depends on).
    The result is shared, so it must be treated as read-only. Short messages, parsed anew every turn, are built
    every time (a lookup could never hit)."""
    if not is_shared_message(source):
        return build(*args, dropped)
    key = (id(source), *variant)
    hit = _turns.get(key)
    if hit is not None:
        dropped.extend(hit[1])
        return hit[0]
    notes: list[str] = []
    result = build(*args, notes)
    dropped.extend(notes)
    if _turns.put(key, source, (result, tuple(notes)), _turn_size(result)):
        remember(_messages_of(result))
    return result


def _messages_of(result: dict | list[dict]) -> list[dict]:
    return result if isinstance(result, list) else [result]


def _turn_size(result: dict | list[dict]) -> int:
    """What a translated turn (a message, or a list of them) holds beyond its source: its content (images in it
    are new data URLs) and arguments, counted twice (its JSON is kept too once serialised), plus a fixed amount
    per message."""
    size = 0
    for message in _messages_of(result):
        content = message.get("content")
        size += TURN_OVERHEAD + 2 * (len(content) if isinstance(content, str) else len(compact_json(content)))
        for call in message.get("tool_calls") or []:
            size += 2 * len(call["function"]["arguments"])
    return size
