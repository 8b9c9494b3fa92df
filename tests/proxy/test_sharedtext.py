"""Memoised translations of shared request pieces: the same result as computing afresh, the very same string
object for the very same pieces (so orjson reuses its UTF-8), and the dropped-feature notes replayed on a hit."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.bodyparse import parse_object
from proxy.translate import sharedtext
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.sharedtext import join_text, shared_block, shared_compact_json
from proxy.translate.tools import compact_json
from proxy.translate.validate import validate_messages_request
from tests.support import captured_requests


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.text(max_size=700), max_size=5), st.sampled_from(["\n", "\n\n", ""]))
def test_join_text_is_join(texts: list[str], separator: str) -> None:
    assert join_text(separator, texts) == separator.join(texts)
    assert join_text(separator, texts) == separator.join(texts)  # and again, possibly from the memo


def test_same_pieces_give_the_same_object_equal_pieces_an_equal_string() -> None:
    a, b = "x" * 600, "y" * 600
    first = join_text("\n\n", [a, b])
    assert join_text("\n\n", [a, b]) is first
    copies = ["".join(["x"] * 600), "".join(["y"] * 600)]  # equal text, other objects
    again = join_text("\n\n", copies)
    assert again == first and again is not first
    assert join_text("\n", [a, b]) == f"{a}\n{b}"  # the separator is part of the key


def test_compact_json_of_a_shared_object_is_computed_once() -> None:
    value = {"file_path": "/a.py", "content": "print('hé')\n" * 200}
    text = shared_compact_json(value)
    assert text == compact_json(value) and shared_compact_json(value) is text


def test_a_memoised_block_replays_its_notes() -> None:
    calls: list[int] = []

    def build(source: dict, notes: list[str]) -> dict:
        calls.append(1)
        notes.append("role:system")
        return {"type": "text", "text": source["content"]}

    source = {"role": "system", "content": "z" * 2000}
    first_notes: list[str] = []
    second_notes: list[str] = []
    block = shared_block(source, build, first_notes)
    assert shared_block(source, build, second_notes) is block
    assert len(calls) == 1 and first_notes == second_notes == ["role:system"]


@pytest.mark.parametrize("captured", captured_requests(), ids=lambda c: c.id)
def test_translating_shared_pieces_gives_exactly_the_fresh_translation(captured) -> None:
    """Each real turn, parsed the way the proxy parses it (shared pieces) and translated three times, gives
    exactly what translating a private deep copy with empty memos gives, dropped features included."""
    raw = orjson.dumps(captured.body)
    for memo in (sharedtext._joins, sharedtext._json, sharedtext._blocks):
        memo.clear()
    fresh = translate_request(validate_messages_request(copy.deepcopy(captured.body)), "m", BackendProfile())
    results = [
        translate_request(validate_messages_request(parse_object(raw)), "m", BackendProfile())
        for _ in range(3)
    ]
    for result in results:
        assert orjson.dumps(result.body) == orjson.dumps(fresh.body)
        assert result.dropped == fresh.dropped
    shared = 0
    for a, b in zip(results[1].body["messages"], results[2].body["messages"], strict=True):
        if isinstance(a.get("content"), str) and len(a["content"]) >= sharedtext.MIN_CHARS:
            assert a["content"] is b["content"]  # large texts come back as the same object
            shared += 1
    assert shared >= 2  # at least the system prompt and the first user turn
