"""Bounded LRU memos for what Claude Code resends every turn: by exact text (`TextMemo`), or by the identity of
the shared objects a result was made from (`IdentityMemo`).

Python hashes a new `bytes` key in full on every dict lookup (about 5 µs for Claude Code's 30 KB tool list), and
every request brings new key objects. Large cached texts rarely share a length, so their lookup goes by length
first and then compares content (one memcmp), which costs a fraction of the hash; texts under 1 KB (short
messages, which often share a length) are looked up by their hash. A stored key's hash is computed once, when it
is inserted.

`IdentityMemo` serves results derived from objects the parse caches hand to every request that resent the same
text: an entry holds the objects it was made from, so their ids cannot be reused by other objects while it
lives, and equal ids then mean the same objects.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")
MISSING: object = object()  # what `get` returns for a text it does not hold (None is a valid value)
# Below this many bytes a text is looked up by its hash: a session's short messages (tool calls and results made
# from one template) share lengths by the dozen, and comparing each would cost more than hashing ~200 bytes.
HASHED_BELOW = 1024


class TextMemo(Generic[V]):
    """At most `max_entries` texts of `max_bytes` in total; the least recently used go first. With
    `track_values`, it can also tell whether an object is one of its values (`holds`)."""

    def __init__(self, max_entries: int, max_bytes: int, track_values: bool = False) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._values: OrderedDict[bytes, V] = OrderedDict()
        self._by_size: dict[int, list[bytes]] = {}
        self._by_identity: dict[int, V] | None = {} if track_values else None
        self.total_bytes = 0

    def __len__(self) -> int:
        return len(self._values)

    def values(self) -> list[V]:
        return list(self._values.values())

    def holds(self, value: object) -> bool:
        """Whether `value` is the very object stored for some text (always False without `track_values`)."""
        by_identity = self._by_identity
        return by_identity is not None and by_identity.get(id(value)) is value

    def get(self, text: bytes) -> V | object:
        """The value stored for exactly `text`, or MISSING."""
        if len(text) < HASHED_BELOW:  # short texts often share a length, and hashing them is cheap
            value = self._values.get(text, MISSING)
            if value is not MISSING:
                self._values.move_to_end(text)
            return value
        for key in self._by_size.get(len(text), ()):
            if key == text:
                self._values.move_to_end(key)
                return self._values[key]
        return MISSING

    def ending(self, text: bytes) -> tuple[bytes, V] | None:
        """The most recently used stored text that `text` ends with and is longer than, with its value (a scan of
        the entries, each a memcmp from the end: for the few, large texts of a tail cache)."""
        for key in reversed(self._values):
            if len(text) > len(key) and text.endswith(key):
                self._values.move_to_end(key)
                return key, self._values[key]
        return None

    def get_or_make(self, text: bytes, make: Callable[..., V], *args: Any) -> V:
        """The value stored for `text`, or `make(*args)`'s, which is then stored (unless the text alone is over
        the byte budget). Arguments rather than a closure: this runs for several pieces of every request."""
        value = self.get(text)
        if value is MISSING:
            value = make(*args)
            if len(text) <= self.max_bytes:
                self._store(text, value)
        return value  # type: ignore[return-value]

    def put(self, text: bytes, value: V) -> None:
        if len(text) > self.max_bytes or self.get(text) is not MISSING:
            return
        self._store(text, value)

    def _store(self, text: bytes, value: V) -> None:
        """Insert a text known to be absent and within the budget; evict the least recently used beyond it."""
        self._values[text] = value
        if len(text) >= HASHED_BELOW:  # short texts are found by their hash, without the length index
            self._by_size.setdefault(len(text), []).append(text)
        by_identity = self._by_identity
        if by_identity is not None:
            by_identity[id(value)] = value
        self.total_bytes += len(text)
        while len(self._values) > self.max_entries or self.total_bytes > self.max_bytes:
            oldest, evicted = self._values.popitem(last=False)
            if by_identity is not None and by_identity.get(id(evicted)) is evicted:
                del by_identity[id(evicted)]
            if len(oldest) >= HASHED_BELOW:
                same_size = self._by_size[len(oldest)]
                same_size.remove(oldest)
                if not same_size:
                    del self._by_size[len(oldest)]
            self.total_bytes -= len(oldest)

    def clear(self) -> None:
        self._values.clear()
        self._by_size.clear()
        if self._by_identity is not None:
            self._by_identity.clear()
        self.total_bytes = 0


class IdentityMemo:
    """An LRU of results keyed by the ids of the objects they were computed from (which the entry keeps), at most
    `max_entries` of them and `max_size` in total by the size each `put` declares."""

    def __init__(
        self, max_entries: int, max_size: int, on_evict: Callable[[Any], None] | None = None
    ) -> None:
        self.max_entries, self.max_size = max_entries, max_size
        self._entries: OrderedDict[tuple, tuple[object, Any, int]] = OrderedDict()
        self.size = 0
        self.on_evict = on_evict  # called with each result that leaves (evicted or cleared)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> Any:
        """The stored result, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple, pieces: object, result: Any, size: int) -> bool:
        """Store `result` (never None), made from `pieces` (kept alive with it), counting `size` to the budget.
        False when it alone is over the budget (not stored)."""
        if size > self.max_size:
            return False
        self._entries[key] = (pieces, result, size)
        self.size += size
        while len(self._entries) > self.max_entries or self.size > self.max_size:
            _, (_, evicted, dropped) = self._entries.popitem(last=False)
            self.size -= dropped
            if self.on_evict is not None:
                self.on_evict(evicted)
        return True

    def clear(self) -> None:
        results = [entry[1] for entry in self._entries.values()]
        self._entries.clear()
        self.size = 0
        if self.on_evict is not None:
            for result in results:
                self.on_evict(result)
