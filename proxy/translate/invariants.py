"""The Anthropic SSE grammar as a checker: every event the stream translator emits passes through it.

A broken invariant is a proxy bug; raising AssertionError turns it into a test failure (and, in the
relay, into an `error` event instead of a stream Claude Code would silently misread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from proxy.translate.jsonprefix import parse_json
from proxy.translate.shapes import StreamInvariantError

__all__ = ["EventChecker", "StreamInvariantError"]

DELTA_FOR_BLOCK = {
    "text": ("text_delta", "citations_delta"),
    "thinking": ("thinking_delta", "signature_delta"),
    "tool_use": ("input_json_delta",),
}


class _OpenBlock:
    """The content block between its start and stop events."""

    __slots__ = ("allowed_deltas", "deltas", "index", "json", "json_started", "signatures", "type")

    def __init__(self, index: int, block_type: str) -> None:
        self.index, self.type = index, block_type
        self.allowed_deltas = DELTA_FOR_BLOCK[block_type]
        self.json: list[str] = []
        self.json_started = False  # the first non-empty input_json_delta was checked
        self.signatures = 0
        self.deltas = 0


class EventChecker:
    """Tracks one stream's events and raises StreamInvariantError on the first illegal one."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False  # message_stop or error seen
        self.stop_reason_seen = False
        self.next_index = 0
        self.open_block: _OpenBlock | None = None
        # built once: check() runs for every event of every stream
        self._handlers: dict[object, Callable[[dict], None]] = {
            "message_start": self._on_message_start,
            "ping": self._on_ping,
            "content_block_start": self._on_content_block_start,
            "content_block_delta": self._on_content_block_delta,
            "content_block_stop": self._on_content_block_stop,
            "message_delta": self._on_message_delta,
            "message_stop": self._on_message_stop,
        }

    def _fail(self, message: str) -> NoReturn:
        raise StreamInvariantError(message)

    def check(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "content_block_delta" and self.started and not self.finished:  # most events
            self._on_content_block_delta(event)
            return
        if self.finished:
            self._fail(f"{kind} after the end of the stream")
        if kind == "error":
            self.finished = True
            return
        if not self.started:
            if kind != "message_start":
                self._fail(f"first event must be message_start, got {kind}")
            self._check_message_start(event)
            self.started = True
            return
        handler = self._handlers.get(kind)
        if handler is None:
            self._fail(f"unexpected event type {kind}")
        handler(event)

    def _check_message_start(self, event: dict) -> None:
        message = event.get("message") or {}
        if message.get("content") != [] or message.get("stop_reason") is not None:
            self._fail("message_start must carry empty content and a null stop_reason")
        if not isinstance(message.get("usage", {}).get("input_tokens"), int):
            self._fail("message_start usage needs input_tokens")

    def _on_message_start(self, event: dict) -> None:
        self._fail("second message_start")

    def _on_ping(self, event: dict) -> None:
        return None

    def _on_content_block_start(self, event: dict) -> None:
        if self.stop_reason_seen:
            self._fail("content block after message_delta")
        if self.open_block is not None:
            self._fail(f"block {event.get('index')} started while block {self.open_block.index} is open")
        if event.get("index") != self.next_index:
            self._fail(f"block index {event.get('index')} != expected {self.next_index}")
        block_type: Any = (event.get("content_block") or {}).get("type")
        if block_type not in DELTA_FOR_BLOCK:
            self._fail(f"unknown block type {block_type}")
        if block_type == "tool_use":
            block = event["content_block"]
            if not block.get("id") or not block.get("name") or block.get("input") != {}:
                self._fail("tool_use block must start with id, name and input {}")
        self.open_block = _OpenBlock(self.next_index, block_type)
        self.next_index += 1

    def _on_content_block_delta(self, event: dict) -> None:
        block = self.open_block  # _require_open, inlined: this runs for nearly every event
        if block is None or event.get("index") != block.index:
            self._fail(f"event for block {event.get('index')} which is not the open block")
        delta = event.get("delta") or {}
        delta_type = delta.get("type")
        if delta_type not in block.allowed_deltas:
            self._fail(f"{delta_type} inside a {block.type} block")
        if block.signatures:
            self._fail("delta after the thinking block's signature")
        if delta_type == "text_delta" or delta_type == "thinking_delta":
            text = delta.get("text" if delta_type == "text_delta" else "thinking")
            if not isinstance(text, str) or not text:
                self._fail(f"empty {delta_type}")
        elif delta_type == "input_json_delta":
            partial = delta.get("partial_json", "")
            block.json.append(partial)
            if partial and not block.json_started:  # only the first non-empty text can break this
                block.json_started = True
                if not partial.startswith("{"):  # the fragments before it are all empty
                    self._fail(f"tool_use input must start with '{{', got {partial[:20]!r}")
        elif delta_type == "signature_delta":
            block.signatures += 1
        block.deltas += 1

    def _on_content_block_stop(self, event: dict) -> None:
        block = self._require_open(event)
        if block.type == "thinking" and block.signatures != 1:
            self._fail("a thinking block must end with exactly one signature_delta")
        if block.type == "tool_use":
            text = "".join(block.json)
            try:
                value = parse_json(text)
            except ValueError:
                self._fail(f"tool_use input is not valid JSON: {text[:200]!r}")
            if not isinstance(value, dict):
                self._fail("tool_use input is not an object")
        self.open_block = None

    def _on_message_delta(self, event: dict) -> None:
        if self.open_block is not None:
            self._fail("message_delta while a block is open")
        if self.stop_reason_seen:
            self._fail("second message_delta")
        if not (event.get("delta") or {}).get("stop_reason"):
            self._fail("message_delta without a stop_reason")
        if not isinstance((event.get("usage") or {}).get("output_tokens"), int):
            self._fail("message_delta usage needs output_tokens")
        self.stop_reason_seen = True

    def _on_message_stop(self, event: dict) -> None:
        if not self.stop_reason_seen:
            self._fail("message_stop before message_delta")
        self.finished = True

    def _require_open(self, event: dict) -> _OpenBlock:
        block = self.open_block
        if block is None or event.get("index") != block.index:
            self._fail(f"event for block {event.get('index')} which is not the open block")
        return block
