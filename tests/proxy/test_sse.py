"""The SSE codec: Anthropic frames out; OpenAI/Anthropic streams in, however the bytes are split."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from proxy.sse import ServerSentEvent, SSEDecoder, encode_event, encode_events

STREAM = (
    b": keep-alive comment\n"
    b"event: message_start\n"
    b'data: {"type": "message_start"}\n'
    b"\n"
    b"data: first line\n"
    b"data:second line\n"
    b"\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ServerSentEvent("message_start", '{"type": "message_start"}'),
    ServerSentEvent(None, "first line\nsecond line"),
    ServerSentEvent(None, "[DONE]"),
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[ServerSentEvent]:
    decoder, events, start = SSEDecoder(), [], 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.flush()


def test_encode_event_is_one_named_frame_with_single_line_json() -> None:
    frame = encode_event({"type": "content_block_delta", "delta": {"text": "a\nb"}})
    assert frame.startswith(b"event: content_block_delta\ndata: ")
    assert frame.endswith(b"\n\n") and frame.count(b"\n") == 3
    assert json.loads(frame.split(b"data: ", 1)[1]) == {
        "type": "content_block_delta",
        "delta": {"text": "a\nb"},
    }
    assert encode_events([{"type": "ping"}, {"type": "ping"}]) == encode_event({"type": "ping"}) * 2


def test_decoder_handles_comments_multiline_data_and_optional_space() -> None:
    assert decode_in_pieces(STREAM, []) == EXPECTED


def test_crlf_and_bare_cr_line_endings() -> None:
    assert decode_in_pieces(STREAM.replace(b"\n", b"\r\n"), []) == EXPECTED
    assert decode_in_pieces(STREAM.replace(b"\n", b"\r"), []) == EXPECTED


def test_crlf_split_between_reads_is_one_line_ending() -> None:
    data = STREAM.replace(b"\n", b"\r\n")
    cut = data.index(b"\r\n") + 1  # between \r and \n
    assert decode_in_pieces(data, [cut]) == EXPECTED


@given(
    st.lists(st.integers(min_value=0, max_value=2 * len(STREAM)), max_size=12),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_any_split_gives_the_same_events(cuts: list[int], ending: str) -> None:
    data = STREAM.replace(b"\n", ending.encode())
    assert decode_in_pieces(data, [min(c, len(data)) for c in cuts]) == EXPECTED


def test_a_long_line_over_many_reads_is_one_event() -> None:
    """Reads without a line break are set aside and joined once (a 3 MB tool call in one chunk, 4 KB reads)."""
    payload = json.dumps({"arguments": "x" * 3_000_000}).encode()
    data = b"data: " + payload + b"\r\n\r\ndata: [DONE]\n\n"
    events = decode_in_pieces(data, list(range(4096, len(data), 4096)))
    assert [len(e.data) for e in events] == [len(payload), len("[DONE]")]
    assert events[0].data.encode() == payload


@given(st.lists(st.sampled_from([b"data: ", b"x" * 50, b"\n", b"\r", b"\r\n", b": c\n"]), max_size=30))
def test_pending_counts_each_byte_since_the_last_blank_line_once(reads: list[bytes]) -> None:
    """Until an event can end, the count is exactly the bytes received: a read that joins the reads set aside
    must not count them again (a 9 MB line, then its line break, counted 18 MB and hit the relay's cap)."""
    decoder, received = SSEDecoder(), 0
    for data in reads:
        decoder.feed_raw(data)
        received += len(data)
        joined = b"".join(reads)[:received].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n\n" not in joined and not joined.startswith(b"\n"):
            assert decoder.pending_bytes == received
        assert decoder.pending_bytes <= received


def test_a_held_line_counts_as_pending_until_it_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_raw(b"data: abc") == []
    assert decoder.feed_raw(b"def") == []
    assert decoder.pending_bytes == len(b"data: abcdef")
    assert decoder.feed_raw(b"\r") == []  # a CR at the end of a read may be half of CRLF
    # the CR was a bare line ending: "ghi" is a field line without a colon (ignored), then the blank line
    assert decoder.feed_raw(b"ghi\n\n") == [(None, b"abcdef")]
    assert decoder.pending_bytes == 0


def test_last_event_without_blank_line_is_kept_on_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}') == []
    assert decoder.pending_bytes > 0
    assert decoder.flush() == [ServerSentEvent(None, '{"a": 1}')]


def test_utf8_split_inside_a_character_survives() -> None:
    data = "data: héllo ✓\n\n".encode()
    cut = data.index("✓".encode()) + 1
    assert decode_in_pieces(data, [cut]) == [ServerSentEvent(None, "héllo ✓")]


def test_event_field_without_data_dispatches_nothing() -> None:
    assert decode_in_pieces(b"event: ping\n\n", []) == []
