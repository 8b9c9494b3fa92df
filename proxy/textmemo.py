"""A bounded LRU map from exact byte strings to values, for the large texts Claude Code resends every turn.

Python hashes a new `bytes` key in full on every dict lookup (about 5 µs for Claude Code's 30 KB tool list), and
every request brings new key objects. Cached texts here are large and rarely share a length, so the lookup goes by
length first and then compares content (one memcmp), which costs a fraction of the hash. A stored key's hash is
computed once, when it is inserted.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")
MISSING: object = object()  # what `get` returns for a text it does not hold (None is a valid value)


class TextMemo(Generic[V]):
    """At most `max_entries` texts of `max_bytes` in total; the least recently used go first."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._values: OrderedDict[bytes, V] = OrderedDict()
        self._by_size: dict[int, list[bytes]] = {}
        self.total_bytes = 0

    def __len__(self) -> int:
        return len(self._values)

    def values(self) -> list[V]:
        return list(self._values.values())

    def get(self, text: bytes) -> V | object:
        """The value stored for exactly `text`, or MISSING."""
        for key in self._by_size.get(len(text), ()):
            if key == text:
                self._values.move_to_end(key)
                return self._values[key]
        return MISSING

    def put(self, text: bytes, value: V) -> None:
        if len(text) > self.max_bytes or self.get(text) is not MISSING:
            return
        self._values[text] = value
        self._by_size.setdefault(len(text), []).append(text)
        self.total_bytes += len(text)
        while len(self._values) > self.max_entries or self.total_bytes > self.max_bytes:
            oldest, _ = self._values.popitem(last=False)
            same_size = self._by_size[len(oldest)]
            same_size.remove(oldest)
            if not same_size:
                del self._by_size[len(oldest)]
            self.total_bytes -= len(oldest)

    def clear(self) -> None:
        self._values.clear()
        self._by_size.clear()
        self.total_bytes = 0
