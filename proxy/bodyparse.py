"""Parsing request bodies: top-level fields one by one, and Claude Code's tool list only once per distinct text.

A Claude Code turn is ~50 KB of JSON of which ~30 KB is the same list of tool schemas on every turn. msgspec
splits the body into its top-level fields as raw JSON without building objects; each field is then parsed
with orjson (which also turns integers beyond 64 bits into floats, as a whole-body `orjson.loads` would), except
`tools`, whose parsed list is looked up by its exact text in a small LRU cache. The cached list is shared by
every request that sent the same text, so it must be treated as read-only (nothing in the proxy writes to a
request body), and `translate_tools` recognises it by identity instead of serialising it again.

Anything that does not parse this way is parsed again by `orjson.loads` alone, whose error the caller reports.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec
import orjson

CACHED_FIELDS = frozenset({"tools"})
CACHE_SIZE = 16  # distinct tool lists kept (one per Claude Code version/configuration in use)
MIN_CACHED_BYTES = 1024  # smaller values are cheaper to parse than to look up

_split = msgspec.json.Decoder(dict[str, msgspec.Raw])
_parsed: OrderedDict[bytes, object] = OrderedDict()


def _cached(text: bytes) -> object:
    """Found by length and then content, not by a dict lookup: hashing a new 30 KB key on every request costs
    several times the one comparison (cached texts almost never share a length)."""
    size = len(text)
    for known, value in _parsed.items():
        if len(known) == size and known == text:
            _parsed.move_to_end(known)  # the known key's hash is cached: no pass over the text
            return value
    value = orjson.loads(text)
    _parsed[text] = value
    if len(_parsed) > CACHE_SIZE:
        _parsed.popitem(last=False)
    return value


def is_shared(value: object) -> bool:
    """True for a value this module hands to every request that sends the same text (so: read-only)."""
    return any(cached is value for cached in _parsed.values())  # at most CACHE_SIZE identity checks


def parse_object(raw: bytes) -> object:
    """The parsed body: a dict (with a possibly shared `tools` list) when `raw` is a JSON object; anything else
    goes through `orjson.loads`, so its result or its JSONDecodeError is exactly orjson's."""
    try:
        fields = _split.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return orjson.loads(raw)  # not an object, not JSON, or nested too deep: orjson says what
    body: dict = {}
    try:
        for key, value in fields.items():
            if key in CACHED_FIELDS and len(value) >= MIN_CACHED_BYTES:
                body[key] = _cached(bytes(value))
            else:
                body[key] = orjson.loads(memoryview(value))
    except orjson.JSONDecodeError:  # e.g. invalid UTF-8, which the split does not check: orjson's own error
        return orjson.loads(raw)
    return body
