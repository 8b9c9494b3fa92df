"""One streamed tool call's arguments: forwarded while valid, repaired or closed when they are not.

The stream translator asks `take()` for text it may send now as `input_json_delta`, and `finish()` for the
text that completes the arguments when the block closes. Whatever the backend sent, the concatenation of
everything handed out parses to a JSON object; every repair is reported in `problems`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from proxy.translate.jsonprefix import JsonObjectPrefix
from proxy.translate.tools import parse_tool_arguments, required_properties


def is_snapshot(raw: str, fragment: str) -> bool:
    """A fragment that repeats all arguments so far, where appending it would break the JSON, is a
    cumulative snapshot (some servers send those) rather than new text."""
    if not raw or len(fragment) <= len(raw) or not fragment.startswith(raw):
        return False
    _, appended_rejected = JsonObjectPrefix().feed(raw + fragment)
    _, alone_rejected = JsonObjectPrefix().feed(fragment)
    return bool(appended_rejected) and not alone_rejected


def _parses_to(text: str, target: object) -> bool:
    try:
        return json.loads(text) == target
    except ValueError:
        return False


@dataclass
class ToolCallBuffer:
    """A backend tool call being assembled. `raw` is what the backend sent, `emitted` what went out."""

    openai_index: int | None
    backend_id: str | None = None
    openai_name: str | None = None
    raw: str = ""
    fed: int = 0  # characters of `raw` already given to the checker
    emitted: str = ""
    held: str = ""  # accepted text not sent yet (an escape sequence still being completed)
    rejected: str = ""  # raw text after the first character that broke validity
    checker: JsonObjectPrefix = field(default_factory=JsonObjectPrefix)
    id: str | None = None  # the Anthropic id and name, set when the block starts
    name: str | None = None
    started: bool = False
    closed: bool = False

    def append(self, arguments: str, problems: list[str]) -> None:
        if is_snapshot(self.raw, arguments):
            arguments = arguments[len(self.raw) :]
        if not arguments:
            return
        if self.closed:
            problems.append(f"tool {self.name}: arguments arrived after its block closed; ignored")
        else:
            self.raw += arguments

    def take(self) -> str:
        """The newly accepted argument text, holding back an unfinished escape like `\\u00`."""
        new = self.raw[self.fed :]
        self.fed = len(self.raw)
        accepted, rejected = self.checker.feed(new)
        self.rejected += rejected
        ready = self.held + accepted
        if not self.emitted:  # the SDKs parse every partial: the JSON text must start at its `{`
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
        missing = [key for key in required_properties(schema) if key not in json.loads(self.emitted)]
        if missing:
            problems.append(f"tool {self.name}: input lacks required properties {missing}")
        return text

    def _out(self, text: str) -> str:
        self.emitted += text
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
