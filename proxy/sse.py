"""Server-sent events: encode Anthropic events, decode OpenAI (or Anthropic) streams incrementally.

The decoder follows the WHATWG rules the SDKs use: `\n`, `\r\n` and `\r` line endings, `:` comments,
one optional space after the field colon, and several `data:` lines joined by `\n`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

_EVENT_PREFIX: dict[str, bytes] = {}  # "content_block_delta" -> b"event: content_block_delta\ndata: "


def _prefix(event_type: str) -> bytes:
    prefix = _EVENT_PREFIX.get(event_type)
    if prefix is None:
        prefix = b"event: " + event_type.encode() + b"\ndata: "
        if len(_EVENT_PREFIX) < 64:  # the Anthropic event types are a handful; never grow without bound
            _EVENT_PREFIX[event_type] = prefix
    return prefix


def encode_event(event: dict) -> bytes:
    """One Anthropic SSE frame: `event: <type>` then a single-line JSON `data:` line."""
    return _prefix(event["type"]) + orjson.dumps(event) + b"\n\n"


def encode_events(events: list[dict]) -> bytes:
    parts: list[bytes] = []
    for event in events:
        parts += (_prefix(event["type"]), orjson.dumps(event), b"\n\n")
    return b"".join(parts)


@dataclass(slots=True)
class ServerSentEvent:
    event: str | None
    data: str


class SSEDecoder:
    """Incremental SSE parser: feed bytes as they arrive, get complete events back."""

    def __init__(self) -> None:
        self._buffer = b""
        self._unended: list[bytes] = []  # reads without a line break, joined once one arrives
        self._pending = 0  # bytes since the last blank line: what an unfinished event holds
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        return [ServerSentEvent(name, data.decode("utf-8", "replace")) for name, data in self.feed_raw(chunk)]

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: a last event without its blank line still counts (many servers omit it)."""
        return [ServerSentEvent(name, data.decode("utf-8", "replace")) for name, data in self.flush_raw()]

    def feed_raw(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        """Like `feed`, with each event's data left as bytes (orjson parses bytes without a decode first).

        A read without a line break is only set aside: joining the buffer with every such read would make a
        long line quadratic (a backend sending 20 MB without a newline cost 2 s of CPU that way)."""
        if b"\n" not in chunk and b"\r" not in chunk:
            if chunk:
                self._unended.append(chunk)
                self._pending += len(chunk)
            return []
        arrived = len(chunk)  # what is new: the set-aside reads were counted when they came
        if self._unended:
            chunk = b"".join([self._buffer, *self._unended, chunk])
            self._buffer, self._unended = b"", []
        buf = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buf:
            held = b""
            if buf.endswith(b"\r"):  # may be the first half of a \r\n split across reads
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            held = b""
        *lines, rest = buf.split(b"\n")
        self._buffer = rest + held
        events: list[tuple[str | None, bytes]] = []
        data = first = self._data
        for line in lines:
            if line.startswith(b"data:"):  # nearly every line of a stream: no call, no partition
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            else:
                self._handle_line(line, events)
                data = self._data  # a blank line started a new list
        if data is first:  # no blank line in this read: all of it belongs to the unfinished event
            self._pending += arrived
        else:  # what follows the last blank line (only this read's lines: the count stays linear)
            self._pending = len(self._buffer) + sum(len(piece) for piece in data)
        return events

    def flush_raw(self) -> list[tuple[str | None, bytes]]:
        events: list[tuple[str | None, bytes]] = []
        if self._unended:
            self._buffer = b"".join([self._buffer, *self._unended])
            self._unended = []
        self._pending = 0
        if self._buffer:
            self._handle_line(self._buffer.rstrip(b"\r"), events)
            self._buffer = b""
        self._handle_line(b"", events)
        return events

    @property
    def pending_bytes(self) -> int:
        """About how many bytes an event that has not ended yet holds (the relay caps it); O(1)."""
        return self._pending

    def _handle_line(self, line: bytes, events: list[tuple[str | None, bytes]]) -> None:
        """One line, kept as bytes: an event's data is joined once, when the event completes."""
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                events.append((self._event, data))
            self._event, self._data = None, []
            return
        if line.startswith(b"data:"):
            self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
