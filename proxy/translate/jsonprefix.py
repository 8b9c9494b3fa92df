"""An incremental checker for "is this text still the prefix of a JSON object?".

The stream translator forwards tool-argument fragments to Claude Code as they arrive, but only while the
concatenation can still become valid JSON; this pushdown automaton answers that per character, escapes raw
control characters inside strings on the way (a common model mistake that JSON forbids), and can produce
the shortest suffix that closes whatever has been accepted so far.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.translate.surrogates import dump_json_text

_NUM_PREFIX = re.compile(r"-?|-?(?:0|[1-9]\d*)(?:\.\d*)?|-?(?:0|[1-9]\d*)(?:\.\d+)?[eE][+-]?\d*")
_NUM_FULL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = {"t": "true", "f": "false", "n": "null"}
_HEX = set("0123456789abcdefABCDEF")
_ESCAPES = set('"\\/bfnrtu')
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_WHITESPACE = " \t\n\r"
# A run of string characters that need no automaton step: no quote, backslash or control character.
_PLAIN_RUN = re.compile(r'[^"\\\x00-\x1f]+')

# Deepest nesting accepted in tool arguments. Real tools nest a few levels; far deeper text is a broken model,
# and past ~250 levels orjson cannot serialise the answer and the standard library's parser runs out of stack.
MAX_DEPTH = 128

# States: what the automaton expects next.
START, VALUE, VALUE_OR_END, KEY, KEY_OR_END, COLON, COMMA_OR_END, DONE = range(8)
STRING, NUMBER, LITERAL = 8, 9, 10


@dataclass
class _Frame:
    """An open container: an object's finished keys, or how many values an array has started."""

    kind: str  # "{" or "["
    keys: list[str] = field(default_factory=list)
    count: int = 0

    def current(self) -> str | int:
        return self.keys[-1] if self.kind == "{" else self.count - 1


def parse_json(text: str) -> Any:
    """`json.loads(text)`, through orjson when it can (several times faster; this runs for every streamed tool
    call). orjson refuses a little that the standard library accepts (lone surrogate escapes, numbers beyond a
    double's range) and reads integers beyond 64 bits as floats, so callers use the result only for validity,
    types and keys, and a refusal falls back to `json.loads`, which also raises for really invalid text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return loads_exact(text)


def loads_exact(text: str) -> object:
    """`json.loads` (integers of any size stay exact), with nesting beyond the interpreter's stack reported as
    the ValueError of invalid JSON instead of a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_depth(value: object) -> int:
    """How deeply containers nest in a parsed JSON value (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _child(node: object, key: str | int) -> object:
    """node[key] for a JSON container, or a sentinel when absent."""
    if isinstance(node, dict) and isinstance(key, str) and key in node:
        return node[key]
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return _MISSING


_MISSING = object()


def _rest_of_container(node: object, frame: _Frame, leading_comma: bool) -> str | None:
    """The members of `node` after those already written, then the closing bracket."""
    if frame.kind == "{":
        if not isinstance(node, dict):
            return None
        items = [f"{dump_json_text(k)}:{dump_json_text(v)}" for k, v in node.items() if k not in frame.keys]
        close = "}"
    else:
        if not isinstance(node, list):
            return None
        items = [dump_json_text(v) for v in node[frame.count :]]
        close = "]"
    if not items:
        return close
    return ("," if leading_comma else "") + ",".join(items) + close


class JsonObjectPrefix:
    """Feed text; learn how much of it keeps the whole a valid prefix of one JSON object."""

    def __init__(self) -> None:
        self.state = START
        self.in_key = False  # the open string is an object key
        self.escape = ""  # pending escape sequence inside a string ("\\", "\\u12", …)
        self.token = ""  # number or literal being read
        self._parts: list[str] = []  # the raw (escaped) text of the open string so far, in pieces
        self.frames: list[_Frame] = []  # path information for each open container
        self.broken = False  # a character could not be accepted; nothing more is accepted

    @property
    def complete(self) -> bool:
        return self.state == DONE

    @property
    def string(self) -> str:
        """The raw (escaped) text of the open string so far; joined on demand, not per character."""
        parts = self._parts
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return parts[0] if parts else ""

    @property
    def pending_escape(self) -> str:
        """The characters of an escape sequence that is not complete yet (empty when none)."""
        return self.escape if self.state == STRING else ""

    def clone(self) -> JsonObjectPrefix:
        _ = self.string  # one piece to copy instead of thousands
        return copy.deepcopy(self)

    def feed(self, text: str) -> tuple[str, str]:
        """(accepted text, possibly with control characters escaped; the rejected rest)."""
        if self.broken:
            return "", text
        out: list[str] = []
        i, end = 0, len(text)
        while i < end:
            i = self._plain_run(text, i, out)
            if i == end:
                break
            accepted = self._step(text[i])
            if accepted is None:
                self.broken = True
                return "".join(out), text[i:]
            out.append(accepted)
            i += 1
        return "".join(out), ""

    def feed_lenient(self, text: str) -> str:
        """Accept what can be accepted, skipping characters that cannot (used only to close a broken call)."""
        self.broken = False
        out: list[str] = []
        i, end = 0, len(text)
        while i < end:
            i = self._plain_run(text, i, out)
            if i == end:
                break
            # A rejected step changes at most `state` and `token` (a finished number, then a bad
            # character): restoring those two is enough, and avoids deep-copying per character.
            state, token = self.state, self.token
            accepted = self._step(text[i])
            if accepted is None:
                self.state, self.token = state, token
            else:
                out.append(accepted)
            i += 1
        return "".join(out)

    def closing_suffix(self) -> str:
        """The shortest text that turns the accepted prefix into a complete JSON object."""
        parts: list[str] = []
        state = self.state
        if state == START:
            return "{}"
        if state == STRING:
            if self.escape:
                parts.append("\\" if self.escape == "\\" else "0" * (6 - len(self.escape)))
            parts.append('"')
            state = COLON if self.in_key else COMMA_OR_END
        elif state == NUMBER:
            if not _NUM_FULL.fullmatch(self.token):
                parts.append("0")
            state = COMMA_OR_END
        elif state == LITERAL:
            parts.append(_LITERALS[self.token[0]][len(self.token) :])
            state = COMMA_OR_END
        if state == KEY:
            parts.append('"_":null')
        elif state == COLON:
            parts.append(":null")
        elif state == VALUE:
            parts.append("null")
        parts.extend("}" if f.kind == "{" else "]" for f in reversed(self.frames))
        return "".join(parts)

    def continuation(self, target: dict) -> str | None:
        """Text that completes the accepted prefix so that it parses to `target`, or None if none can.

        Used when a tool call's arguments break mid-stream: json_repair reads the whole text, and when
        what was already sent is the start of that reading, the rest of the reading is sent after it.
        """
        if self.state == START:
            return dump_json_text(target)
        if self.state == DONE:
            return ""
        if self.escape or (self.state == STRING and self.in_key):
            return None
        frames = copy.deepcopy(self.frames)
        nodes: list[object] = [target]
        for parent in frames[:-1]:
            nodes.append(_child(nodes[-1], parent.current()))
        if any(node is _MISSING for node in nodes):
            return None
        head = self._finish_token(nodes[-1], frames[-1])
        if head is None:
            return None
        parts = [head]
        for depth in range(len(frames) - 1, -1, -1):
            frame, node = frames[depth], nodes[depth]
            done_current = depth < len(frames) - 1 or self.state not in (KEY, KEY_OR_END, VALUE_OR_END)
            rest = _rest_of_container(node, frame, leading_comma=done_current)
            if rest is None:
                return None
            parts.append(rest)
        return "".join(parts)

    def _finish_token(self, node: object, frame: _Frame) -> str | None:
        """The text that completes the token or value open in the innermost container (`frame` is a copy)."""
        state = self.state
        if state in (KEY, KEY_OR_END, VALUE_OR_END, COMMA_OR_END):
            return ""
        if state == VALUE and frame.kind == "[":  # after a comma: the next item, counted when it starts
            value = _child(node, frame.count)
            if value is _MISSING:
                return None
            frame.count += 1  # the rest of the array follows this item
            return dump_json_text(value)
        value = _child(node, frame.current())
        if value is _MISSING:
            return None
        if state == COLON:
            return ":" + dump_json_text(value)
        if state == VALUE:
            return dump_json_text(value)
        if state == STRING:
            written = parse_json(f'"{self.string}"')
            if not isinstance(value, str) or not value.startswith(written):
                return None
            return dump_json_text(value[len(written) :])[1:]
        text = dump_json_text(value)  # NUMBER or LITERAL
        return text[len(self.token) :] if text.startswith(self.token) else None

    # --- the automaton -------------------------------------------------------------------------------

    def _plain_run(self, text: str, i: int, out: list[str]) -> int:
        """Accept, in one step, the ordinary characters inside an open string from `i` on (they are
        accepted unchanged whatever follows); returns where the per-character automaton resumes."""
        if self.state != STRING or self.escape:
            return i
        match = _PLAIN_RUN.match(text, i)
        if match is None:
            return i
        run = match.group()
        self._parts.append(run)
        out.append(run)
        return match.end()

    def _step(self, char: str) -> str | None:
        state = self.state
        if state == STRING:
            return self._string_char(char)
        if state == NUMBER:
            if _NUM_PREFIX.fullmatch(self.token + char):
                self.token += char
                return char
            if not _NUM_FULL.fullmatch(self.token):
                return None
            self.state, self.token = COMMA_OR_END, ""
            return self._step(char)
        if state == LITERAL:
            word = _LITERALS[self.token[0]]
            if word.startswith(self.token + char):
                self.token += char
                if self.token == word:
                    self.state, self.token = COMMA_OR_END, ""
                return char
            return None
        if char in _WHITESPACE:
            return char
        if state == START:
            if char != "{":
                return None
            self.frames.append(_Frame("{"))
            self.state = KEY_OR_END
            return char
        if state == DONE:
            return None
        if state in (KEY, KEY_OR_END):
            if char == '"':
                self.state, self.in_key, self._parts = STRING, True, []
                return char
            if char == "}" and state == KEY_OR_END:
                return self._close()
            return None
        if state == COLON:
            if char == ":":
                self.state = VALUE
                return char
            return None
        if state == COMMA_OR_END:
            kind = self.frames[-1].kind
            if char == ",":
                self.state = KEY if kind == "{" else VALUE
                return char
            if (char, kind) in (("}", "{"), ("]", "[")):
                return self._close()
            return None
        return self._value_start(char, allow_end=state == VALUE_OR_END)

    def _close(self) -> str:
        frame = self.frames.pop()
        self.state = COMMA_OR_END if self.frames else DONE
        return "}" if frame.kind == "{" else "]"

    def _value_start(self, char: str, allow_end: bool) -> str | None:
        if char == "]" and allow_end:
            return self._close()
        if char not in '"{[-' and char not in _LITERALS and not (char.isdigit() and char.isascii()):
            return None
        if char in "{[" and len(self.frames) >= MAX_DEPTH:
            return None  # nesting deeper than any real tool input: rejected like a syntax error
        if self.frames[-1].kind == "[":
            self.frames[-1].count += 1
        if char == '"':
            self.state, self.in_key, self._parts = STRING, False, []
        elif char == "{":
            self.frames.append(_Frame("{"))
            self.state = KEY_OR_END
        elif char == "[":
            self.frames.append(_Frame("["))
            self.state = VALUE_OR_END
        elif char in _LITERALS:
            self.state, self.token = LITERAL, char
        else:
            self.state, self.token = NUMBER, char
        return char

    def _string_char(self, char: str) -> str | None:
        accepted = self._string_step(char)
        if accepted is not None and self.state == STRING:
            self._parts.append(accepted)
        return accepted

    def _string_step(self, char: str) -> str | None:
        if self.escape:
            if self.escape == "\\":
                if char not in _ESCAPES:
                    return None
                self.escape = "\\u" if char == "u" else ""
                return char
            if char not in _HEX:
                return None
            self.escape = "" if len(self.escape) == 5 else self.escape + char
            return char
        if char == "\\":
            self.escape = "\\"
            return char
        if char == '"':
            self.state = COLON if self.in_key else COMMA_OR_END
            if self.in_key:
                self.frames[-1].keys.append(parse_json(f'"{self.string}"'))
            return char
        if ord(char) < 0x20:
            return _CONTROL_ESCAPES.get(char, f"\\u{ord(char):04x}")
        return char
