"""Parsing OpenAI stream chunks: only the fields the stream translator reads.

Every chunk repeats `id`, `object`, `created`, `model`, `system_fingerprint`…, which the translator never reads.
msgspec decodes a chunk into plain dicts that hold only the fields listed below (the dicts orjson would give,
minus the rest), about a third faster than a full parse. A chunk that does not fit these shapes (`choices` not a
list of objects, a `delta` that is not an object, a number out of range…) or that carries an `error` is parsed
in full by orjson, as before, so the translator acts on exactly the same values. (One difference: an integer
beyond 64 bits arrives as an int, where orjson gives a float.)
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec
import orjson


class _Delta(TypedDict, total=False):
    content: Any
    reasoning_content: Any
    reasoning: Any
    refusal: Any
    tool_calls: Any
    function_call: Any


class _Choice(TypedDict, total=False):
    index: Any
    delta: _Delta
    finish_reason: Any
    stop_reason: Any
    stopping_word: Any


class _Chunk(TypedDict, total=False):
    choices: list[_Choice]
    usage: Any
    error: Any
    stopping_word: Any
    timings: Any


UNPARSEABLE: object = object()  # what `parse_chunk` returns for data that is not JSON
_decoder = msgspec.json.Decoder(_Chunk)


def parse_chunk(data: bytes) -> object:
    """One SSE event's data as the translator needs it (a dict for a JSON object), or UNPARSEABLE."""
    try:
        chunk = _decoder.decode(data)
    except (msgspec.DecodeError, ValueError, RecursionError):  # ValidationError is a DecodeError; invalid
        return parse_in_full(data)  # UTF-8 raises UnicodeDecodeError, a ValueError
    if "error" in chunk:  # the error mapping reads the whole object
        return parse_in_full(data)
    return chunk


def parse_in_full(data: bytes) -> object:
    """The whole JSON value, or UNPARSEABLE. Invalid UTF-8 is replaced (U+FFFD), not fatal: one bad byte in a
    model's text must not cost the whole chunk."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return orjson.loads(data.decode("utf-8", "replace"))
    except orjson.JSONDecodeError:
        return UNPARSEABLE
