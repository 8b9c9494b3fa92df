"""Parsing request bodies: top-level fields one by one, and the large texts Claude Code resends only once.

A Claude Code turn is ~50 KB of JSON, and nearly all of it was in the previous turn too: the same ~30 KB list of
tool schemas, the same system prompt, and the conversation so far, which only grows at its end. msgspec splits
the body into its top-level fields (and `messages` into its messages) as raw JSON without building objects; each
piece is then parsed with orjson (which also turns integers beyond 64 bits into floats, as a whole-body
`orjson.loads` would), except pieces already seen (messages from 128 bytes on, other fields from 1 KB), whose
parsed value is taken from a bounded cache keyed by their exact text. So a turn costs parsing what is new in it,
not the whole conversation again.

Claude Code also sends the members after `messages` (system prompt, tools, metadata, settings: ~38 KB) byte for
byte as in the session's previous turn, at the end of the body. Those bytes are kept as a known tail with their
parsed members: a body that ends with a known tail has only its head split and parsed (`{` + the members before
the tail + `}`, which must be an object of its own, so the tail starts between two top-level members), and the
tail's members are added as a whole-body parse would add them. That saves msgspec scanning, copying and
comparing the large tail pieces again. A tail is kept from its second sighting on (a session's second turn; the
first bytes of each tail seen are noted), so a system prompt that changes on every request costs no more than
that note. Only compact JSON (no whitespace between members, as Claude Code writes it) is recognised this way;
anything else takes the field-by-field path.

Cached values are shared by every request that sent the same text, so they must be treated as read-only: nothing
in the proxy writes to a request body (translation builds new objects), and `translate_tools` recognises the
shared tool list by identity instead of serialising it again.

Anything that does not parse this way is parsed again by `orjson.loads` alone, whose error the caller reports.
"""

from __future__ import annotations

import msgspec
import orjson

from proxy.textmemo import TextMemo
from proxy.translate.shapes import ModelAndMessages

MIN_CACHED_BYTES = 1024  # smaller pieces are cheaper to parse than to look up
# A message is looked up from 128 bytes on: a session's history is mostly short messages (tool calls, results,
# short turns), resent every turn; looking one up costs ~0.25 µs, parsing 150-250 bytes ~0.7 µs.
MIN_CACHED_MESSAGE_BYTES = 128
CACHE_SIZE = 16  # distinct tool lists kept (one per Claude Code version/configuration in use)

_tools: TextMemo[object] = TextMemo(CACHE_SIZE, 8 << 20)
# one system prompt per session (it names the cwd, the date)
_systems: TextMemo[object] = TextMemo(64, 4 << 20)
# the recent history of the sessions in flight; it knows its values, so translation can tell a shared message
_messages: TextMemo[object] = TextMemo(8192, 8 << 20, track_values=True)
_CACHES = {"tools": _tools, "system": _systems}
# the members after `messages`, as a known text ending bodies (one per session: Claude Code resends them as they were)
_tails: TextMemo[dict] = TextMemo(CACHE_SIZE, 8 << 20)
# tails seen once, by size and first bytes (where a per-session or per-request difference shows first)
_sightings: dict[tuple[int, bytes], None] = {}
SIGHTING_BYTES = 256
MAX_SIGHTINGS = 256

_split = msgspec.json.Decoder(dict[str, msgspec.Raw])
_split_list = msgspec.json.Decoder(list[msgspec.Raw])

# the head Claude Code sends before a known tail, split in one pass (see ModelAndMessages)
_split_model_and_messages = msgspec.json.Decoder(ModelAndMessages)
_MODEL_FIRST = b'{"model":'
_SPLIT_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def _parse(piece: msgspec.Raw, cache: TextMemo[object] | None, min_bytes: int = MIN_CACHED_BYTES) -> object:
    if cache is None or len(piece) < min_bytes:
        return orjson.loads(memoryview(piece))
    text = bytes(piece)
    return cache.get_or_make(text, orjson.loads, text)


def _parse_messages(field: msgspec.Raw) -> object:
    try:
        items = _split_list.decode(field)
    except _SPLIT_ERRORS:  # not a list (validation says so) or too deep: orjson decides
        return orjson.loads(memoryview(field))
    return _parse_message_items(items)


def _parse_message_items(items: list[msgspec.Raw]) -> list[object]:
    """Each message, from the memo when its text was seen before."""
    return [_parse(item, _messages, MIN_CACHED_MESSAGE_BYTES) for item in items]


def is_shared_message(message: object) -> bool:
    """True for a message object this module hands to every request that resends the same message text (so:
    read-only, and worth memoising what is derived from it)."""
    return _messages.holds(message)


def is_shared(value: object) -> bool:
    """True for a tool list this module hands to every request that sends the same text (so: read-only)."""
    return any(cached is value for cached in _tools.values())  # at most CACHE_SIZE identity checks


def parse_object(raw: bytes) -> object:
    """The parsed body: a dict (with possibly shared pieces) when `raw` is a JSON object; anything else goes
    through `orjson.loads`, so its result or its JSONDecodeError is exactly orjson's."""
    known = _tails.ending(raw)
    if known is not None and (body := _parse_head(raw, *known)) is not None:
        return body
    try:
        fields = _split.decode(raw)
    except _SPLIT_ERRORS:
        return orjson.loads(raw)  # not an object, not JSON, or nested too deep: orjson says what
    try:
        body = _parse_fields(fields)
    except orjson.JSONDecodeError:  # e.g. invalid UTF-8, which the split does not check: orjson's own error
        return orjson.loads(raw)
    _remember_tail(raw, fields, body)
    return body


def _parse_fields(fields: dict[str, msgspec.Raw]) -> dict:
    body: dict = {}
    for key, value in fields.items():
        if key == "messages" and len(value) >= MIN_CACHED_MESSAGE_BYTES:
            body[key] = _parse_messages(value)
        else:
            body[key] = _parse(value, _CACHES.get(key))
    return body


def _parse_head(raw: bytes, tail: bytes, members: dict) -> dict | None:
    """The body of `raw`, which ends with the known `tail`: only the head before it is parsed. None when the head
    is not an object's members on their own (then the tail does not start between two members)."""
    head = b"".join((memoryview(raw)[: len(raw) - len(tail)], b"}"))
    if head.startswith(_MODEL_FIRST) and (body := _parse_model_and_messages(head)) is not None:
        body.update(members)
        return body
    try:
        fields = _split.decode(head)
        if not fields:
            return None
        body = _parse_fields(fields)
    except (*_SPLIT_ERRORS, orjson.JSONDecodeError):
        return None
    body.update(members)  # as a whole-body parse: a repeated key keeps its first place and its last value
    return body


def _parse_model_and_messages(head: bytes) -> dict | None:
    """The head `{"model":…,"messages":[…]}` parsed as a whole-object parse would; None when it holds anything
    else (another member, messages that are no list, bad JSON), which the field-by-field path then handles.
    Starting with `"model"` and having no other member, its members come in this order (a repeated key keeps
    its last value, as in any parse)."""
    try:
        split = _split_model_and_messages.decode(head)
        return {
            "model": _parse(split.model, None),
            "messages": _parse_message_items(split.messages),
        }
    except (*_SPLIT_ERRORS, orjson.JSONDecodeError):
        return None


def _remember_tail(raw: bytes, fields: dict[str, msgspec.Raw], body: dict) -> None:
    """Keep the members after `messages` as a known tail, when they are large, `raw` is compact JSON, and a body
    ending much the same way came before: a session's second turn. A system prompt that changes on every request
    (a nonce in it) never costs building the tail, only a look at its first bytes."""
    keys = iter(fields)
    if "messages" not in keys:  # consumes the keys up to `messages`
        return
    after = list(keys)
    # `,"key":value` per member and the closing brace (keys as Claude Code writes them: plain ASCII)
    size = 1 + sum(len(key) + len(fields[key]) + 4 for key in after)
    if size < MIN_CACHED_BYTES:
        return
    start = len(raw) - size
    if not raw.startswith(b',"' + after[0].encode(), start):  # not compact JSON (or escaped keys): not kept
        return
    sighting = (size, raw[start : start + SIGHTING_BYTES])
    if sighting not in _sightings:
        _sightings[sighting] = None
        if len(_sightings) > MAX_SIGHTINGS:
            del _sightings[next(iter(_sightings))]
        return
    tail = b"".join([b"," + orjson.dumps(key) + b":" + bytes(fields[key]) for key in after])
    if raw.endswith(tail + b"}"):
        _tails.put(tail + b"}", {k: body[k] for k in after})


def clear_caches() -> None:
    """Forget every cached piece (tests)."""
    for cache in (_tools, _systems, _messages):
        cache.clear()
    _tails.clear()
    _sightings.clear()
