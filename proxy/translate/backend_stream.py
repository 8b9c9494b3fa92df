"""The backend's OpenAI SSE body -> stream translator events, with the garbage policy (pure; no I/O).

`relay._pump` feeds it each network read as it arrives. The chunks of one read are parsed together, so that runs
of plain text or argument fragments reach the translator merged (`coalesce`).

Garbage policy: one unparseable chunk among good ones is skipped and counted in `translator.problems`;
`MAX_BAD_CHUNKS` in a row end the stream with an api_error, and so do `MAX_EVENT_BYTES` without a complete event;
an unparseable half line at EOF is a cut stream.
"""

from __future__ import annotations

from proxy.sse import SSEDecoder
from proxy.translate.chunks import UNPARSEABLE, coalesce, parse_chunk
from proxy.translate.stream import StreamTranslator

MAX_BAD_CHUNKS = 3  # consecutive unparseable chunks that end a stream with an error
MAX_EVENT_BYTES = 16 << 20  # one event (e.g. a whole tool call in one chunk) may be large, but not endless
STREAM_CUT = "backend closed the stream early"


DONE: object = object()  # what `parsed_event` gives for `data: [DONE]`


def parsed_event(data: bytes) -> object:
    """One event's data: DONE, a chunk, or UNPARSEABLE."""
    return DONE if data == b"[DONE]" else parse_chunk(data)


class BackendStream:
    """One stream's parser: `feed` each read, `end_of_body` at EOF without `[DONE]`."""

    def __init__(self, translator: StreamTranslator) -> None:
        self.translator = translator
        self.decoder = SSEDecoder()
        self.bad_in_a_row = 0
        self.done = False  # `data: [DONE]` arrived

    def feed(self, data: bytes) -> list[dict]:
        out: list[dict] = []
        events = self.decoder.feed_raw(data)  # event names carry nothing in OpenAI streams
        for item in coalesce([parsed_event(event_data) for _, event_data in events]):
            out += self._item(item)
            if self.done or self.translator.done:
                return out
        held = self.decoder.pending_bytes
        if held > MAX_EVENT_BYTES:  # a backend sending garbage without end: memory is not free
            return out + self.translator.fail(
                "api_error", f"backend sent {held} bytes without ending an event"
            )
        return out

    def end_of_body(self) -> list[dict]:
        """EOF without [DONE]: a complete last event counts; a half line or no finish_reason at all is a cut."""
        out: list[dict] = []
        for _, event_data in self.decoder.flush_raw():
            item = parsed_event(event_data)
            if item is UNPARSEABLE:
                return out + self.translator.fail("api_error", STREAM_CUT)
            out += self._item(item)
        if not (self.done or self.translator.finish_reason):
            return out + self.translator.fail("api_error", STREAM_CUT)
        return out + self.translator.finish()

    def _item(self, chunk: object) -> list[dict]:
        if chunk is DONE:
            self.done = True
            return self.translator.finish()
        if not isinstance(chunk, dict):
            self.bad_in_a_row += 1
            self.translator.problems.append("skipped an unparseable chunk from the backend")
            if self.bad_in_a_row >= MAX_BAD_CHUNKS:
                return self.translator.fail(
                    "api_error", f"backend sent {self.bad_in_a_row} unparseable chunks"
                )
            return []
        self.bad_in_a_row = 0
        return self.translator.feed(chunk)  # a mid-stream {"error": ...} chunk ends in an error event there
