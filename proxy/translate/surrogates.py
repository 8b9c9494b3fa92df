"""Lone UTF-16 surrogates: JSON can spell them (`"\\ud83d"`, half an emoji), UTF-8 cannot carry them.

They turn up in both directions:
- Claude Code cuts long tool output at a character count, which can split an emoji's surrogate pair, and then
  sends the half as an escape in every later turn of that session. Anthropic's API refuses that body ("no low
  surrogate in string"), so the session is stuck.
- A model may write one into its text or a tool call's arguments.

orjson refuses such escapes. The standard library reads them into a `str` that neither orjson nor UTF-8 can
write. So whatever reads JSON with the standard library and writes it again goes through here:
- what is translated further (request bodies, backend answers) gets U+FFFD in their place;
- JSON text that must stay what the model wrote (a tool call's arguments) keeps them as escapes.
"""

from __future__ import annotations

import json
import re

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = (-(2**63), 2**64 - 1)  # the integers orjson reads as int; beyond them it gives a float


def not_json(constant: str) -> object:
    """NaN and Infinity, which the standard library reads and orjson (and JSON) does not."""
    raise ValueError(f"{constant} is not JSON")


def replace_lone_surrogates(value: object) -> object:
    """The parsed value with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(key): replace_lone_surrogates(item) for key, item in value.items()}
    return value


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dump_json_text(value: object) -> str:
    """Compact JSON with other characters as they are and lone surrogates as the escapes they were read from
    (`json.dumps(ensure_ascii=False)` writes them raw, which UTF-8 cannot encode). A raw surrogate can only sit
    inside a string there, where its escape means the same."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return LONE_SURROGATE.sub(_escape, text) if LONE_SURROGATE.search(text) else text


def _orjson_int(digits: str) -> int | float:
    number = int(digits)
    return number if _INT64[0] <= number <= _INT64[1] else float(number)


def _finite_float(digits: str) -> float:
    number = float(digits)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"number {digits} is infinity when parsed as double")
    return number


def loads_replacing_surrogates(text: str) -> object:
    """What `orjson.loads` would give if it accepted lone surrogate escapes: those become U+FFFD, and numbers
    follow orjson's rules (integers beyond 64 bits as floats; NaN, Infinity and numbers beyond a double refused).
    ValueError for anything else orjson refuses too."""
    try:
        value = json.loads(text, parse_int=_orjson_int, parse_float=_finite_float, parse_constant=not_json)
        # recursive too: a value nested nearly to the limit overflows here, not in the parse
        return replace_lone_surrogates(value)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
