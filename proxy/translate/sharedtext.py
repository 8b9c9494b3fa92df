"""Translations of shared request pieces, memoised by the identity of what they were made from.

The body parser hands every request that resends a large message (or the system prompt) the very objects it
parsed the first time (proxy/bodyparse.py). Text joined from those objects would still be a new string on every
turn, and serialising a new string that is not pure ASCII means encoding it to UTF-8 again: for Claude Code's
~18 KB of system prompt and first message that was most of the cost of serialising the request. Returning the
very same joined string for the very same pieces lets orjson reuse the UTF-8 that CPython caches in it.

An entry holds the pieces it was made from, so their ids cannot be reused by other objects while it lives: equal
ids then mean the same objects, and the same objects give the same result (request bodies are never written to;
tests/proxy/test_bodyparse.py holds translation to that).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from proxy.translate.tools import compact_json

MIN_CHARS = 1024  # shorter results are cheaper to build again than to look up
MAX_ENTRIES = 1024
MAX_CHARS = 4 << 20  # characters held in results (the pieces are about as much again)


class IdentityMemo:
    """An LRU of results keyed by the ids of the objects they were computed from (which the entry keeps)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS) -> None:
        self.max_entries, self.max_chars = max_entries, max_chars
        self._entries: OrderedDict[tuple, tuple[object, Any, int]] = OrderedDict()
        self.chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> Any:
        """The stored result, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple, pieces: object, result: Any, chars: int) -> None:
        """Store `result` (never None), made from `pieces`, whose text is `chars` characters long."""
        if chars > self.max_chars:
            return
        self._entries[key] = (pieces, result, chars)
        self.chars += chars
        while len(self._entries) > self.max_entries or self.chars > self.max_chars:
            _, (_, _, size) = self._entries.popitem(last=False)
            self.chars -= size

    def clear(self) -> None:
        self._entries.clear()
        self.chars = 0


_joins = IdentityMemo()
_json = IdentityMemo()
_blocks = IdentityMemo()


def shared_block(
    source: dict, build: Callable[[dict, list[str]], dict | None], dropped: list[str]
) -> dict | None:
    """`build(source, dropped)` for a large source message, the same block object (and the same notes added to
    `dropped`) again for the same source object. The block is shared, so it must be treated as read-only."""
    key = (id(source), build)
    hit = _blocks.get(key)
    if hit is not None:
        block, notes = hit
        dropped.extend(notes)
        return block
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
