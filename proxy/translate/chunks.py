"""Parsing OpenAI stream chunks: only the fields the stream translator reads.

Every chunk repeats `id`, `object`, `created`, `model`, `system_fingerprint`…, which the translator never reads.
msgspec decodes a chunk into plain dicts that hold only the fields listed below (the dicts orjson would give,
minus the rest), about a third faster than a full parse. A chunk that does not fit these shapes (`choices` not a
list of objects, a `delta` that is not an object, a number out of range…) or that carries an `error` is parsed
in full by orjson, as before, so the translator acts on exactly the same values. (One difference: an integer
beyond 64 bits arrives as an int, where orjson gives a float.)

`coalesce` merges the chunks of one network read that only add text, or arguments to one call: the translator's
per-chunk work is most of a stream's cost, and under load a whole answer often waits in one read.
"""

from __future__ import annotations

import json

import msgspec
import orjson

from proxy.translate.outcome import content_text
from proxy.translate.shapes import Chunk
from proxy.translate.surrogates import not_json, replace_lone_surrogates

UNPARSEABLE: object = object()  # what `parse_chunk` returns for data that is not JSON
_decoder = msgspec.json.Decoder(Chunk)


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
    """The whole JSON value, or UNPARSEABLE. Bad characters become U+FFFD, not fatal: one invalid UTF-8 byte or
    one lone surrogate escape (`"\\ud83d"`, half an emoji) in a model's text must not cost the whole chunk, nor a
    whole non-streamed answer. (orjson rejects lone surrogates; the standard library reads them, and they are
    replaced because no JSON encoder writes them back.)"""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    if "\\u" not in text:  # no escape, so no lone surrogate: really not JSON
        return UNPARSEABLE
    try:
        return replace_lone_surrogates(json.loads(text, parse_constant=not_json))
    except (ValueError, RecursionError):
        return UNPARSEABLE


def completion_chunk(completion: dict) -> dict | None:
    """A whole chat.completion (a backend that ignored `stream: true`) as one equivalent stream chunk, or None
    when it has no usable choice. It carries all that `completion_to_message` reads, so both paths give the same
    message: content as a string or a list of parts, a refusal (shown when there is no answer text), reasoning,
    tool calls or a legacy function_call, and the stop string that ended it (vLLM's `stop_reason`, llama.cpp's
    `stopping_word`)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    message = choice.get("message")
    if message is None:
        message = {}
    if not isinstance(message, dict):
        return None
    delta = {key: message[key] for key in ("role", "reasoning_content", "reasoning") if message.get(key)}
    text = content_text(message.get("content"))
    refusal = message.get("refusal")
    if refusal and isinstance(refusal, str) and not text.strip():
        delta["refusal"] = refusal
    elif text:
        delta["content"] = text
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(calls) if isinstance(call, dict)]
    elif isinstance(message.get("function_call"), dict):
        delta["function_call"] = message["function_call"]
    out = {"index": 0, "delta": delta, "finish_reason": choice.get("finish_reason")}
    for key in ("stop_reason", "stopping_word"):
        if choice.get(key) is not None:
            out[key] = choice[key]
    chunk: dict = {"id": completion.get("id", ""), "model": completion.get("model", ""), "choices": [out]}
    if completion.get("usage"):
        chunk["usage"] = completion["usage"]
    if completion.get("stopping_word") is not None:
        chunk["stopping_word"] = completion["stopping_word"]
    return chunk


TEXT_RUN = -1  # the run key of answer text; a call's arguments run under the call's index (>= 0)


def coalesce(chunks: list[object]) -> list[object]:
    """The chunks of one network read, with each run of chunks that only add answer text, or only add arguments
    to the same tool call, merged into one chunk that carries the joined fragments.

    Argument fragments that open with `{` or hold only whitespace are never merged: some servers send every
    fragment as a snapshot of all the arguments so far, and `ToolCallBuffer` recognises those one by one.

    The translation reads text and arguments as streams, so the merged chunk gives the same message in fewer,
    larger deltas, at a fraction of the per-chunk cost. Runs only form when fragments were already waiting
    together: a backend faster than the proxy reads (under load), or one that sends a whole answer at once. One
    chunk per read, a model generating token by token, passes through untouched."""
    if len(chunks) < 2:
        return chunks
    out: list[object] = []
    key: int | None = None  # the open run's key, None when no run is open
    first: object = None  # the run's first chunk, kept as is when the run stays one chunk long
    pieces: list[str] = []
    for chunk in chunks:
        fragment = _fragment(chunk) if type(chunk) is dict else None
        if fragment is not None and fragment[0] == key:
            pieces.append(fragment[1])
            continue
        if key is not None:
            out.append(_run_chunk(key, first, pieces))
        if fragment is None:
            out.append(chunk)
            key = None
        else:
            key, first, pieces = fragment[0], chunk, [fragment[1]]
    if key is not None:
        out.append(_run_chunk(key, first, pieces))
    return out


def _fragment(chunk: dict) -> tuple[int, str] | None:
    """(TEXT_RUN, text) for a chunk that only adds answer text; (n, arguments) for one that only adds arguments to
    the call with index n; None for anything else (a finish, usage, a name, reasoning, several choices…)."""
    if not _only_set(chunk, 1, _CHUNK_FIELDS):
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") or choice.get("index", 0) not in (0, None):
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    content = delta.get("content")
    if content is not None:
        return (TEXT_RUN, content) if type(content) is str and _only_set(delta, 1, _TEXT_FIELDS) else None
    calls = delta.get("tool_calls")
    if type(calls) is not list or len(calls) != 1 or not _only_set(delta, 1, _CALLS_FIELDS):
        return None
    call = calls[0]
    if type(call) is not dict or not _only_set(call, 2, _CALL_FIELDS):
        return None
    index, function = call.get("index"), call.get("function")
    if (
        type(index) is not int
        or index < 0
        or type(function) is not dict
        or not _only_set(function, 1, _FUNCTION_FIELDS)
    ):
        return None
    arguments = function.get("arguments")
    if type(arguments) is not str or arguments.lstrip()[:1] in ("{", ""):
        return None  # a call's first text, or a snapshot repeating it (see is_snapshot): judged on its own
    return index, arguments


def _only_set(mapping: dict, needed: int, allowed: frozenset[str]) -> bool:
    """No field but `allowed` holds a value (servers may send the others as null). Exactly `needed` fields (those the
    caller then reads and checks) is the usual case and costs no walk."""
    return len(mapping) == needed or all(value is None or name in allowed for name, value in mapping.items())


_CHUNK_FIELDS = frozenset({"choices"})
_TEXT_FIELDS = frozenset({"content"})
_CALLS_FIELDS = frozenset({"tool_calls"})
_CALL_FIELDS = frozenset({"index", "function", "type"})  # `type` is never read
_FUNCTION_FIELDS = frozenset({"arguments"})


def _run_chunk(key: int, first: object, pieces: list[str]) -> object:
    """What a closed run becomes: its only chunk as it was, or one chunk carrying all its pieces."""
    if len(pieces) == 1:
        return first
    joined = "".join(pieces)
    if key == TEXT_RUN:
        return {"choices": [{"index": 0, "delta": {"content": joined}}]}
    call = {"index": key, "function": {"arguments": joined}}
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
