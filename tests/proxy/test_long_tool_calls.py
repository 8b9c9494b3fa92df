"""Long tool calls: the fast paths (whole runs of string text, piece lists) must change nothing but the cost.

A Write call carrying a whole file arrives as tens of thousands of small argument fragments; the stream
translator must pass every one of them through in time proportional to its own size. These tests check the
output is exactly right at that size, compare the JSON-prefix fast path with the per-character automaton it
replaced, and count work (automaton steps, characters joined) rather than measure time.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.translate import jsonprefix, toolcall
from proxy.translate.jsonprefix import JsonObjectPrefix, parse_json
from proxy.translate.response import ResponseContext
from proxy.translate.stream import StreamTranslator
from tests.proxy.strategies import json_values

WRITE_SCHEMA = {
    "type": "object",
    "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["file_path", "content"],
}
# Pieces of file content: code, JSON-special characters, non-ASCII, and every kind of control character.
TOKENS = ["def f(x):", "    return x * 2", " ", "word", "\n", "\t", '"', "\\", "\\n", "é", "日本語", "🙂"]
TOKENS += ["\u2028", "\r", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f", "{", "}", "[", "]", ":", ","]


def _content(length: int, seed: int) -> str:
    rng = random.Random(seed)
    parts, size = [], 0
    while size < length:
        token = rng.choice(TOKENS)
        parts.append(token)
        size += len(token)
    return "".join(parts)


def _encode_sloppily(text: str, seed: int) -> str:
    """A JSON string literal where about half the control characters are raw, as models often write them."""
    rng = random.Random(seed)
    out = []
    for char in text:
        if ord(char) < 0x20 and rng.random() < 0.5:
            out.append(char)  # invalid JSON: the proxy must escape it
        else:
            out.append(json.dumps(char, ensure_ascii=False)[1:-1])
    return '"' + "".join(out) + '"'


def _stream(arguments: str, sizes: list[int]) -> tuple[StreamTranslator, list[dict]]:
    """Stream one Write call whose argument text is cut into pieces of the given sizes (cycled)."""
    ctx = ResponseContext("claude-sonnet-4", {"Write": "Write"}, {"Write": WRITE_SCHEMA}, [], "msg_x", 100)
    translator = StreamTranslator(ctx)
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "Write", "arguments": ""}}
    events = translator.start()
    events += translator.feed({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    pos, i = 0, 0
    while pos < len(arguments):
        piece = arguments[pos : pos + sizes[i % len(sizes)]]
        fragment = {"index": 0, "function": {"arguments": piece}}
        events += translator.feed({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]})
        pos, i = pos + len(piece), i + 1
    events += translator.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    events += translator.finish()  # every event went through EventChecker on the way
    return translator, events


def _input_json(events: list[dict]) -> str:
    return "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )


def _write_arguments(length: int, seed: int) -> tuple[str, dict]:
    content = _content(length, seed)
    arguments = '{"file_path": "/src/a.py", "content": ' + _encode_sloppily(content, seed) + "}"
    return arguments, {"file_path": "/src/a.py", "content": content}


# --- the stream translator -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 64])
def test_a_200k_write_call_arrives_exactly(size):
    arguments, expected = _write_arguments(200_000 if size > 1 else 20_000, seed=size)
    translator, events = _stream(arguments, [size])
    text = _input_json(events)
    assert json.loads(text) == expected
    assert not any(ord(c) < 0x20 for c in text)  # raw control characters were escaped on the way
    assert translator.problems == []


@settings(max_examples=15, deadline=None, database=None)
@given(
    st.integers(min_value=0, max_value=40_000),
    st.integers(min_value=0, max_value=2**32),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
)
def test_any_fragment_sizes_give_the_same_input(length, seed, sizes):
    arguments, expected = _write_arguments(length, seed)
    translator, events = _stream(arguments, sizes)
    assert json.loads(_input_json(events)) == expected
    assert translator.problems == []


def test_a_long_call_cut_off_mid_string_is_closed_with_what_arrived():
    arguments, expected = _write_arguments(50_000, seed=3)
    cut = arguments[: len(arguments) // 2]
    translator, events = _stream(cut, [9])
    got = json.loads(_input_json(events))
    assert got["file_path"] == expected["file_path"]
    assert expected["content"].startswith(got["content"]) and len(got["content"]) > 20_000
    assert any("cut off" in p for p in translator.problems)


# --- the JSON-prefix fast path against the per-character automaton ------------------------------------


class PerCharacter(JsonObjectPrefix):
    """The reference: the feed loops from before the fast path, one automaton step per character and a
    deep-copied snapshot per lenient step."""

    def feed(self, text: str) -> tuple[str, str]:
        if self.broken:
            return "", text
        out: list[str] = []
        for i, char in enumerate(text):
            accepted = self._step(char)
            if accepted is None:
                self.broken = True
                return "".join(out), text[i:]
            out.append(accepted)
        return "".join(out), ""

    def feed_lenient(self, text: str) -> str:
        self.broken = False
        out: list[str] = []
        for char in text:
            snapshot = self.clone()
            accepted = self._step(char)
            if accepted is None:
                self.__dict__.update(snapshot.__dict__)
            else:
                out.append(accepted)
        return "".join(out)


def _state(checker: JsonObjectPrefix) -> tuple:
    frames = [(f.kind, list(f.keys), f.count) for f in checker.frames]
    return (checker.state, checker.in_key, checker.escape, checker.token, checker.string, frames)


def _observed(checker: JsonObjectPrefix) -> tuple:
    return (
        *_state(checker),
        checker.broken,
        checker.complete,
        checker.pending_escape,
        checker.closing_suffix(),
    )


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)]


json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
cut_points = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


@settings(max_examples=150, deadline=None, database=None)
@given(json_objects, st.booleans(), st.booleans(), cut_points)
def test_a_json_object_fed_in_any_pieces_is_accepted_whole(value, ascii_only, indented, cuts):
    text = json.dumps(value, ensure_ascii=ascii_only, indent=1 if indented else None)
    checker, fed = JsonObjectPrefix(), ""
    for piece in _split(text, cuts):
        assert checker.feed(piece) == (piece, "")
        fed += piece
        at_once = JsonObjectPrefix()
        at_once.feed(fed)
        assert _observed(checker) == _observed(at_once)
    assert checker.complete
    assert json.loads(fed) == value


# Text that keeps the automaton busy: JSON syntax, escapes (valid and not), control characters, non-ASCII.
SYNTAX = list('{}[]:,"\\ \n\t') + ["\\u", "\\u00e9", "\\ud83d", '\\"', "\\x", "\x00", "\x1f", "\r"]
SYNTAX += ["true", "fals", "null", "nul", "-", "0", "12", "1.5e", "e+", ".", "é", "🙂", "abc", "key"]
noise = st.lists(st.sampled_from(SYNTAX), max_size=40).map("".join)
prefixes = json_objects.map(json.dumps).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n]))
texts = st.one_of(
    noise,
    st.tuples(prefixes, noise).map("".join),
    st.just('{"a": "').flatmap(lambda head: noise.map(lambda tail: head + tail)),
)


def _outcome(parse, text: str) -> tuple:
    """What the callers of parse_json rely on: valid or not, and the value's type and (for objects) keys."""
    try:
        value = parse(text)
    except ValueError:
        return ("invalid",)
    kind = (
        "number" if type(value) in (int, float) else type(value).__name__
    )  # big integers come back as floats
    return (kind, sorted(value) if isinstance(value, dict) else value if isinstance(value, str) else None)


# what orjson refuses or reads differently: lone surrogates, numbers beyond a double, integers beyond 64 bits
EDGES = ['"\\ud800"', '{"\\udc00":1}', "1e400", '{"n":-1e999}', "123456789012345678901234567890", "NaN"]


@pytest.mark.parametrize("text", EDGES)
def test_parse_json_agrees_with_the_standard_library_on_what_orjson_reads_differently(text):
    assert _outcome(parse_json, text) == _outcome(json.loads, text)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(texts, json_values.map(json.dumps), st.sampled_from(EDGES)))
def test_parse_json_accepts_exactly_what_json_loads_accepts(text):
    assert _outcome(parse_json, text) == _outcome(json.loads, text)


@pytest.mark.plain_python  # PerCharacter subclasses JsonObjectPrefix
@settings(max_examples=400, deadline=None, database=None)
@given(texts, cut_points)
def test_the_fast_path_matches_the_per_character_automaton(text, cuts):
    fast, slow = JsonObjectPrefix(), PerCharacter()
    fast_out = [fast.feed(piece) for piece in _split(text, cuts)]
    slow_out = [slow.feed(char) for char in text]
    assert "".join(a for a, _ in fast_out) == "".join(a for a, _ in slow_out)
    assert "".join(r for _, r in fast_out) == "".join(r for _, r in slow_out)
    assert _observed(fast) == _observed(slow)
    target = {"a": "é\n" * 3, "k": [1, None]}
    assert fast.continuation(target) == slow.continuation(target)
    rest = "".join(r for _, r in fast_out)
    assert fast.feed_lenient(rest + text) == slow.feed_lenient(rest + text)
    assert _observed(fast) == _observed(slow)


@settings(max_examples=100, deadline=None, database=None)
@given(texts, cut_points)
def test_a_clone_is_independent(text, cuts):
    pieces = _split(text, cuts)
    checker = JsonObjectPrefix()
    checker.feed(pieces[0] if pieces else "")
    copy = checker.clone()
    before = _observed(copy)
    for piece in pieces[1:]:
        checker.feed(piece)
    assert _observed(copy) == before


# --- counting work instead of time ---------------------------------------------------------------------


@pytest.mark.plain_python
def test_plain_string_text_takes_no_per_character_steps(monkeypatch):
    steps = []
    step = JsonObjectPrefix._step

    def counted(self: JsonObjectPrefix, char: str) -> str | None:
        steps.append(char)
        return step(self, char)

    monkeypatch.setattr(jsonprefix.JsonObjectPrefix, "_step", counted)
    content = "abcdefé🙂 " * 20_000  # 200k characters, none of them special inside a string
    arguments = json.dumps(
        {"file_path": "/a.txt", "content": content}, ensure_ascii=False, separators=(",", ":")
    )
    _, events = _stream(arguments, [8])
    assert json.loads(_input_json(events))["content"] == content
    assert len(steps) == arguments.count('"') + 5  # quotes, `{`, `:` twice, `,`, `}`: the syntax alone


@pytest.mark.plain_python
def test_long_calls_join_each_character_a_bounded_number_of_times(monkeypatch):
    joined = []
    join = toolcall._joined

    def counted(parts: list[str]) -> str:
        text = join(parts)
        joined.append(len(text))
        return text

    monkeypatch.setattr(toolcall, "_joined", counted)
    arguments, expected = _write_arguments(100_000, seed=5)
    translator, events = _stream(arguments, [8])
    assert json.loads(_input_json(events)) == expected
    # finish() reads the whole texts a few times (strip, parse); never once per fragment
    assert len(arguments) // 8 > 10_000 and len(joined) <= 3
