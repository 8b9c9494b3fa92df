"""Classes that the compiled translation modules use but that must stay plain Python classes (see setup.py).

mypyc compiles the stream translation into C, and a class defined in a compiled module becomes a native class:
a TypedDict there loses the totality msgspec reads (every field would be required, so no chunk would decode),
a msgspec Struct there decodes into a native class msgspec does not know (its fields came back as the wrong
objects), and a native class cannot derive from AssertionError.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec


class StreamInvariantError(AssertionError):
    """Our own output broke the Anthropic event grammar."""


# The fields of an OpenAI stream chunk that the stream translator reads (see proxy.translate.chunks).
class Delta(TypedDict, total=False):
    content: Any
    reasoning_content: Any
    reasoning: Any
    refusal: Any
    tool_calls: Any
    function_call: Any


class Choice(TypedDict, total=False):
    index: Any
    delta: Delta
    finish_reason: Any
    stop_reason: Any
    stopping_word: Any


class Chunk(TypedDict, total=False):
    choices: list[Choice]
    usage: Any
    error: Any
    stopping_word: Any
    timings: Any


class ModelAndMessages(msgspec.Struct, forbid_unknown_fields=True):
    """The head of a Claude Code body before its known tail (proxy.bodyparse): `model`, then `messages`, split
    in one pass, the messages into their items at once instead of the field first and then its items (each a
    scan of ~12 KB)."""

    model: msgspec.Raw
    messages: list[msgspec.Raw]
