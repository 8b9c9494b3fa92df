"""Parsing request bodies: top-level fields one by one, and the large texts Claude Code resends only once.

A Claude Code turn is ~50 KB of JSON, and nearly all of it was in the previous turn too: the same ~30 KB list of
tool schemas, the same system prompt, and the conversation so far, which only grows at its end. msgspec splits
the body into its top-level fields (and `messages` into its messages) as raw JSON without building objects; each
piece is then parsed with orjson (which also turns integers beyond 64 bits into floats, as a whole-body
`orjson.loads` would), except large pieces already seen, whose parsed value is taken from a bounded cache keyed
by their exact text. So a turn costs parsing what is new in it, not the whole conversation again.

Cached values are shared by every request that sent the same text, so they must be treated as read-only: nothing
in the proxy writes to a request body (translation builds new objects), and `translate_tools` recognises the
shared tool list by identity instead of serialising it again.

Anything that does not parse this way is parsed again by `orjson.loads` alone, whose error the caller reports.
"""

from __future__ import annotations

import msgspec
import orjson

from proxy.textmemo import TextMemo

MIN_CACHED_BYTES = 1024  # smaller pieces are cheaper to parse than to look up
CACHE_SIZE = 16  # distinct tool lists kept (one per Claude Code version/configuration in use)

_tools: TextMemo[object] = TextMemo(CACHE_SIZE, 8 << 20)
# one system prompt per session (it names the cwd, the date)
_systems: TextMemo[object] = TextMemo(64, 4 << 20)
_messages: TextMemo[object] = TextMemo(2048, 8 << 20)  # the recent history of the sessions in flight
_CACHES = {"tools": _tools, "system": _systems}

_split = msgspec.json.Decoder(dict[str, msgspec.Raw])
_split_list = msgspec.json.Decoder(list[msgspec.Raw])
_SPLIT_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def _parse(piece: msgspec.Raw, cache: TextMemo[object] | None) -> object:
    if cache is None or len(piece) < MIN_CACHED_BYTES:
        return orjson.loads(memoryview(piece))
    text = bytes(piece)
    return cache.get_or_make(text, orjson.loads, text)


def _parse_messages(field: msgspec.Raw) -> object:
    try:
        items = _split_list.decode(field)
    except _SPLIT_ERRORS:  # not a list (validation says so) or too deep: orjson decides
        return orjson.loads(memoryview(field))
    return [_parse(item, _messages) for item in items]


def is_shared(value: object) -> bool:
    """True for a tool list this module hands to every request that sends the same text (so: read-only)."""
    return any(cached is value for cached in _tools.values())  # at most CACHE_SIZE identity checks


def parse_object(raw: bytes) -> object:
    """The parsed body: a dict (with possibly shared pieces) when `raw` is a JSON object; anything else goes
    through `orjson.loads`, so its result or its JSONDecodeError is exactly orjson's."""
    try:
        fields = _split.decode(raw)
    except _SPLIT_ERRORS:
        return orjson.loads(raw)  # not an object, not JSON, or nested too deep: orjson says what
    body: dict = {}
    try:
        for key, value in fields.items():
            if key == "messages" and len(value) >= MIN_CACHED_BYTES:
                body[key] = _parse_messages(value)
            else:
                body[key] = _parse(value, _CACHES.get(key))
    except orjson.JSONDecodeError:  # e.g. invalid UTF-8, which the split does not check: orjson's own error
        return orjson.loads(raw)
    return body


def clear_caches() -> None:
    """Forget every cached piece (tests)."""
    for cache in (_tools, _systems, _messages):
        cache.clear()
