"""The byte-string LRU behind the parse and estimate caches: exact-content hits only, and both bounds hold."""

from __future__ import annotations

import copy

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import tokens
from proxy.textmemo import HASHED_BELOW, MISSING, IdentityMemo, TextMemo
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.serialize import serialize_body
from proxy.translate.validate import validate_messages_request
from tests.support import captured_requests


def test_hits_need_the_same_content_not_just_the_same_length() -> None:
    memo: TextMemo[int] = TextMemo(8, 1000)
    memo.put(b"abcd", 1)
    memo.put(b"abce", 2)  # same length, other text: its own entry
    assert memo.get(bytes(bytearray(b"abcd"))) == 1  # a new object with the same bytes hits
    assert memo.get(b"abce") == 2
    assert memo.get(b"abcf") is MISSING
    assert memo.get(b"abc") is MISSING


def test_least_recently_used_goes_first_when_either_bound_is_reached() -> None:
    memo: TextMemo[int] = TextMemo(3, 100)
    for n, text in enumerate([b"a", b"bb", b"ccc"]):
        memo.put(text, n)
    memo.get(b"a")  # used: now the newest
    memo.put(b"dddd", 3)  # over 3 entries: "bb" (least recently used) goes
    assert memo.get(b"bb") is MISSING and memo.get(b"a") == 0 and len(memo) == 3
    memo.put(b"e" * 95, 4)  # over 100 bytes: the oldest go until it fits
    assert memo.total_bytes <= 100 and memo.get(b"e" * 95) == 4
    memo.put(b"f" * 101, 5)  # larger than the whole budget: never stored
    assert memo.get(b"f" * 101) is MISSING


_BUDGET = 3 * HASHED_BELOW + 20
# short texts (found by their hash) and long ones (found by length, then content), sharing lengths often
_TEXTS = st.tuples(st.binary(max_size=6), st.booleans()).map(
    lambda t: b"L" * HASHED_BELOW + t[0] if t[1] else t[0]
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(_TEXTS, st.integers()), max_size=40), st.integers(1, 6))
def test_behaves_like_a_bounded_dict(operations: list[tuple[bytes, int]], max_entries: int) -> None:
    memo: TextMemo[int] = TextMemo(max_entries, _BUDGET)
    for text, value in operations:
        expected = memo.get(text)
        memo.put(text, value)
        stored = memo.get(bytes(bytearray(text)))  # a new object with the same bytes
        # a text already held keeps its first value; a new one is stored unless it alone exceeds the budget
        assert stored == (expected if expected is not MISSING else value if len(text) <= _BUDGET else MISSING)
        assert len(memo) <= max_entries and memo.total_bytes <= _BUDGET
        assert memo.total_bytes == sum(len(k) for k in memo._values)
        indexed = sorted(k for bucket in memo._by_size.values() for k in bucket)
        assert indexed == sorted(
            k for k in memo._values if len(k) >= HASHED_BELOW
        )  # the index follows evictions


def test_identity_memo_bounds() -> None:
    memo = IdentityMemo(max_entries=2, max_size=10)
    pieces = [object() for _ in range(3)]
    for n, piece in enumerate(pieces):
        memo.put((id(piece),), piece, f"r{n}", 4)
    assert len(memo) == 2 and memo.get((id(pieces[0]),)) is None and memo.get((id(pieces[2]),)) == "r2"
    memo.put(("big",), None, "x", 11)  # larger than the budget: not stored
    assert memo.get(("big",)) is None and memo.size <= 10


def test_get_or_make_makes_once_per_text_and_respects_the_budget() -> None:
    memo: TextMemo[int] = TextMemo(4, 10)
    made: list[bytes] = []

    def make(text: bytes) -> int:
        made.append(text)
        return len(made)

    assert memo.get_or_make(b"abc", make, b"abc") == 1
    assert memo.get_or_make(bytes(bytearray(b"abc")), make, b"abc") == 1  # stored: not made again
    assert memo.get_or_make(b"x" * 11, make, b"big") == 2  # over the budget: made, not stored
    assert memo.get(b"x" * 11) is MISSING and made == [b"abc", b"big"]


def test_memoised_message_estimates_equal_fresh_ones_on_real_turns() -> None:
    """Each real turn estimated from a cold memo and again from a warm one gives the same count."""
    for captured in captured_requests():
        translated = translate_request(
            validate_messages_request(copy.deepcopy(captured.body)), "m", BackendProfile()
        )
        message_json = serialize_body(translated.body, "max_tokens").message_json
        tokens._message_estimates.clear()
        cold = tokens.estimate_tokens(translated.body, None, message_json)
        warm = tokens.estimate_tokens(translated.body, None, message_json)
        assert cold == warm == tokens.estimate_tokens(translated.body)
        assert any(len(j) >= tokens.MIN_MEMO_BYTES for j in message_json)  # the memo was really used
        assert len(tokens._message_estimates) > 0
        assert orjson.loads(message_json[0]) == translated.body["messages"][0]


def test_a_short_message_is_memoised_only_when_the_size_bound_does_not_settle_it() -> None:
    """A line-numbered tool result (`cat -n` output, as Claude Code's Read returns) is short but full of spaces:
    its estimate walks its strings, so it is kept; a short message the size bound settles is not."""
    spaced = {"role": "tool", "tool_call_id": "call_1", "content": "     1\tdef f():\n     2\t    return 1\n"}
    dense = {"role": "tool", "tool_call_id": "call_2", "content": "x" * 40}
    tokens._message_estimates.clear()
    for message in (spaced, dense):
        body = {"messages": [message]}
        serialized = orjson.dumps(message)
        assert len(serialized) < tokens.MIN_MEMO_BYTES
        unmemoised = tokens.estimate_tokens(body, 0)  # without its JSON, a message is never looked up
        assert tokens.estimate_tokens(body, 0, [serialized]) == unmemoised
        assert tokens.estimate_tokens(body, 0, [orjson.dumps(message)]) == unmemoised  # warm, fresh bytes
    assert tokens._message_estimates.get(orjson.dumps(spaced)) is not MISSING
    assert tokens._message_estimates.get(orjson.dumps(dense)) is MISSING


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(_TEXTS, st.booleans()), max_size=40), st.integers(1, 6))
def test_a_tracking_memo_holds_exactly_its_values(
    operations: list[tuple[bytes, bool]], max_entries: int
) -> None:
    """`holds` answers for the very objects stored, as entries come and go; equal objects made elsewhere, and
    evicted values, are not held."""
    memo: TextMemo[list] = TextMemo(max_entries, _BUDGET, track_values=True)
    made: list[list] = []  # every value ever offered (kept alive, so that their ids stay theirs)
    for text, clear in operations:
        if clear:
            memo.clear()
        made.append([text])
        memo.get_or_make(text, _same, made[-1])
        stored = memo.values()
        assert all(memo.holds(value) for value in stored)
        assert not any(memo.holds(value) for value in made if not any(value is s for s in stored))
        assert not memo.holds([text])  # equal, but not the stored object
    assert not TextMemo(4, 100).holds(made[-1] if made else [])  # without tracking: never


def _same(value: list) -> list:
    return value


def test_identity_memo_reports_every_result_that_leaves() -> None:
    left: list[str] = []
    memo = IdentityMemo(max_entries=2, max_size=10, on_evict=left.append)
    keep = [object(), object(), object()]
    for n, piece in enumerate(keep):
        assert memo.put((id(piece),), piece, f"r{n}", 1) is True
    assert left == ["r0"]  # over two entries: the oldest left
    assert (
        memo.put((0,), None, "big", 11) is False
    )  # over the budget on its own: never stored, so never reported
    assert left == ["r0"]
    memo.clear()
    assert sorted(left) == ["r0", "r1", "r2"] and len(memo) == 0
