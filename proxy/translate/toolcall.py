"""One streamed tool call's arguments: forwarded while valid, repaired or closed when they are not.

The stream translator asks `take()` for text it may send now as `input_json_delta`, and `finish()` for the
text that completes the arguments when the block closes. Whatever the backend sent, the concatenation of
everything handed out parses to a JSON object; every repair is reported in `problems`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from proxy.translate.jsonprefix import JsonObjectPrefix, parse_json
from proxy.translate.tools import parse_tool_arguments, required_properties


def is_snapshot(raw: str, fragment: str) -> bool:
    """A fragment that repeats all arguments so far and is valid JSON text on its own is a cumulative
    snapshot (some servers send those) rather than new text. That holds even when appending it would also be
    valid, as after a key's colon (`{"command":` then `{"command":"ls"}`): new text that repeats the whole
    call so far would be a nested object starting with the very same keys, which tool arguments never are;
    a fragment that is only valid appended (`{"": ` then `{"": 1}}`) is new text."""
    if not raw or len(fragment) <= len(raw) or not fragment.startswith(raw):
        return False
    _, alone_rejected = JsonObjectPrefix().feed(fragment)
    return not alone_rejected


def _parses_to(text: str, target: object) -> bool:
    try:
        return json.loads(text) == target
    except ValueError:
        return False


def _joined(parts: list[str]) -> str:
    """The pieces as one string, kept as a single piece so the next join only covers newer pieces."""
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""


@dataclass
class ToolCallBuffer:
    """A backend tool call being assembled. `raw` is what the backend sent, `emitted` what went out.

    Both are kept as lists of pieces with running lengths and joined only on demand: a long call
    arrives in thousands of fragments, and growing one string per fragment would be quadratic.
    """

    openai_index: int | None
    backend_id: str | None = None
    openai_name: str | None = None
    raw_parts: list[str] = field(default_factory=list, repr=False)
    raw_len: int = 0
    unfed: list[str] = field(default_factory=list, repr=False)  # raw pieces not given to the checker
    emitted_parts: list[str] = field(default_factory=list, repr=False)
    emitted_len: int = 0
    held: str = ""  # accepted text not sent yet (an escape sequence still being completed)
    rejected_parts: list[str] = field(default_factory=list, repr=False)  # raw text after the break
    checker: JsonObjectPrefix = field(default_factory=JsonObjectPrefix)
    id: str | None = None  # the Anthropic id and name, set when the block starts
    name: str | None = None
    started: bool = False
    closed: bool = False
    dropped: bool = False  # its arguments were unusable: it became a text block, not a tool_use
    # whether the arguments open with `{` (None: nothing but whitespace yet). Its block starts only then, so a
    # call whose text is no JSON object at all ("ls -la") can still become text instead of a tool_use with {}
    opening: bool | None = None

    @property
    def raw(self) -> str:
        """Everything the backend sent for this call (joined on demand)."""
        return _joined(self.raw_parts)

    @property
    def emitted(self) -> str:
        """Everything handed out as `input_json_delta` so far (joined on demand)."""
        return _joined(self.emitted_parts)

    @property
    def rejected(self) -> str:
        """The raw text after the first character that broke validity (joined on demand)."""
        return _joined(self.rejected_parts)

    def append(self, arguments: str, problems: list[str]) -> None:
        # is_snapshot needs the joined text only for a fragment longer than everything so far
        if self.raw_len and len(arguments) > self.raw_len and is_snapshot(self.raw, arguments):
            arguments = arguments[self.raw_len :]
        if not arguments:
            return
        if self.closed:
            problems.append(f"tool {self.name}: arguments arrived after its block closed; ignored")
        else:
            if self.opening is None and (head := arguments.lstrip()):
                self.opening = head[0] == "{"
            self.raw_parts.append(arguments)
            self.unfed.append(arguments)
            self.raw_len += len(arguments)

    def starts_another(self, call_id: str | None, name: str, arguments: object) -> bool:
        """Whether a fragment naming function `name`, found on this call's index (or with no index at all), is
        the start of another call. A new id with a name is (Ollama reuses index 0 with a new id and name per
        call); an id that changes without a name is not (Poolside changes it after the first fragment). Without
        a new id, a name starts another call only after this call's arguments are complete (servers repeat the
        name on every fragment) and only when it does not just repeat this call."""
        if self.openai_name is None:  # the name this call was waiting for
            return False
        if call_id and self.backend_id:
            return call_id != self.backend_id
        if not self.arguments_complete():
            return False
        if name != self.openai_name:
            return True
        return isinstance(arguments, str) and bool(arguments.strip()) and arguments != self.raw

    def arguments_complete(self) -> bool:
        """Whether the arguments so far are a whole JSON object, so that a fragment naming a function after them
        starts another call. A waiting call's text is parsed, only when it ends with `}`: servers that repeat
        the name on every fragment must not cost a parse per fragment."""
        if self.started:
            return self.closed or self.checker.complete
        tail = next((part for part in reversed(self.raw_parts) if part.strip()), "")
        if not tail.rstrip().endswith("}"):
            return False
        try:
            return isinstance(parse_json(self.raw), dict)
        except ValueError:
            return False

    def take(self) -> str:
        """The newly accepted argument text, holding back an unfinished escape like `\\u00`."""
        if not self.unfed:  # nothing new: what is held stays held
            return ""
        new = "".join(self.unfed)
        self.unfed.clear()
        accepted, rejected = self.checker.feed(new)
        if rejected:
            self.rejected_parts.append(rejected)
        ready = self.held + accepted
        if not self.emitted_len:  # the SDKs parse every partial: the JSON text must start at its `{`
            ready = ready.lstrip()
        keep = len(self.checker.pending_escape)
        self.held = ready[len(ready) - keep :] if keep else ""
        return self._out(ready[: len(ready) - keep])

    def finish(self, schema: dict | None, problems: list[str]) -> str:
        """The text that completes the arguments as a JSON object (after a last `take()`)."""
        text = self.take()
        self.closed = True
        held, self.held = self.held, ""
        if not self.raw.strip():  # a call without arguments is legitimate: send `{}` explicitly
            text += self._out("{}")
        elif self.checker.broken or not self.emitted.strip():
            text += self._out(self._repair(held, schema, problems))
        elif not self.checker.complete:
            text += self._out(held + self.checker.closing_suffix())
            problems.append(f"tool {self.name}: arguments were cut off; closed the JSON")
        required = required_properties(schema)
        sent = parse_json(self.emitted) if required else {}  # parsed once, not once per key
        missing = [key for key in required if key not in sent]
        if missing:
            problems.append(f"tool {self.name}: input lacks required properties {missing}")
        return text

    def _out(self, text: str) -> str:
        if text:
            self.emitted_parts.append(text)
            self.emitted_len += len(text)
        return text

    def _repair(self, held: str, schema: dict | None, problems: list[str]) -> str:
        """Continue what was sent with json_repair's reading of the whole text when that extends it;
        otherwise keep the valid part, skip what cannot be valid, and close the JSON."""
        if self.checker.complete:
            problems.append(
                f"tool {self.name}: ignored trailing text {self.rejected[:100]!r} after the arguments"
            )
            return ""
        parsed = parse_tool_arguments(self.raw, self.name or "", schema)
        target = parsed.input
        continuation = self.checker.continuation(target) if target is not None and not held else None
        if continuation is not None and _parses_to(self.emitted + continuation, target):
            problems.append(parsed.problem or f"tool {self.name}: repaired invalid JSON arguments")
            return continuation
        if not self.emitted.strip():
            problems.append(f"tool {self.name}: unusable arguments {self.raw[:200]!r} replaced by {{}}")
            return "{}"
        accepted = self.checker.feed_lenient(self.rejected)
        problems.append(
            f"tool {self.name}: invalid JSON arguments mid-stream; kept the valid part and closed it"
        )
        return held + accepted + self.checker.closing_suffix()
