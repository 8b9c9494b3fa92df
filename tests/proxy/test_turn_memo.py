"""Translated turns memoised by the identity of the shared message they came from (sharedtext.shared_turn): a
resent history translates exactly as it did from scratch, whatever else changed around it."""

from __future__ import annotations

import copy
import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import bodyparse
from proxy.bodyparse import MIN_CACHED_MESSAGE_BYTES, is_shared_message, parse_object
from proxy.errors import AnthropicError
from proxy.translate import knownmessages, sharedtext
from proxy.translate.request import BackendProfile, translate_request
from proxy.translate.serialize import serialize_body
from proxy.translate.validate import validate_messages_request
from tests.proxy.strategies import requests as anthropic_requests
from tests.support import captured_requests

PAD = "p" * MIN_CACHED_MESSAGE_BYTES  # makes a message long enough for the parser to share it


def translated(raw: bytes, profile: BackendProfile | None = None) -> tuple[dict, list[str]]:
    """The OpenAI body and the dropped features for a raw Anthropic body, parsed as the proxy parses it."""
    result = translate_request(validate_messages_request(parse_object(raw)), "m", profile or BackendProfile())
    return result.body, result.dropped


def from_scratch(raw: bytes, profile: BackendProfile | None = None) -> tuple[dict, list[str]]:
    """The same with every memo cold: what the translation gives without any of them."""
    bodyparse._messages.clear()
    sharedtext._turns.clear()
    return translated(raw, profile)


def session_turn(messages: list[dict], **extra: object) -> bytes:
    return orjson.dumps({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages, **extra})


def call(call_id: str, text: str = "") -> dict:
    blocks: list[dict] = [{"type": "text", "text": text}] if text else []
    blocks.append(
        {"type": "tool_use", "id": call_id, "name": "Read", "input": {"file_path": f"/src/{call_id}.py"}}
    )
    return {"role": "assistant", "content": blocks}


def result(call_id: str, text: str = PAD) -> dict:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": text}]}


def test_a_resent_history_is_served_from_the_memo_and_translates_as_from_scratch() -> None:
    history = [{"role": "user", "content": f"fix the bug {PAD}"}, call("toolu_1", PAD), result("toolu_1")]
    first = session_turn(history)
    expected = from_scratch(first)
    assert translated(first) == expected  # the parse memo shares the messages now, the turn memo fills
    turns_before = len(sharedtext._turns)
    assert turns_before == 3
    longer = session_turn([*history, call("toolu_2", PAD), result("toolu_2")])
    warm = translated(longer)
    assert len(sharedtext._turns) == turns_before + 2  # only the new turns were translated and stored
    assert warm == from_scratch(longer)
    assert warm[0]["messages"][: len(expected[0]["messages"])] == expected[0]["messages"]


def test_each_resent_turn_is_the_very_object_translated_before() -> None:
    history = [{"role": "user", "content": f"hello {PAD}"}, call("toolu_1", PAD), result("toolu_1")]
    raw = session_turn(history)
    from_scratch(raw)
    first, _ = translated(raw)
    second, _ = translated(raw)
    assert all(a is b for a, b in zip(first["messages"], second["messages"], strict=True))
    assert is_shared_message(parse_object(raw)["messages"][1])


def test_short_messages_are_translated_every_time_and_never_stored() -> None:
    raw = session_turn([{"role": "user", "content": "hi"}, call("t1"), result("t1", "ok")])
    assert len(raw) < 3 * MIN_CACHED_MESSAGE_BYTES
    expected = from_scratch(raw)
    assert translated(raw) == expected and translated(raw) == expected
    assert len(sharedtext._turns) == 0


def test_the_same_result_answers_differently_after_a_different_call() -> None:
    """A user turn's translation depends on the calls it answers: the key holds them."""
    answer = result("toolu_1")
    matched = session_turn([{"role": "user", "content": "go"}, call("toolu_1"), answer])
    unmatched = session_turn([{"role": "user", "content": "go"}, call("toolu_9"), answer])
    expected_unmatched = from_scratch(unmatched)
    expected_matched = from_scratch(matched)
    for _ in range(2):  # each after the other, with the shared result message in the memo
        assert translated(matched) == expected_matched
        assert translated(unmatched) == expected_unmatched
    assert "orphan_tool_result" in expected_unmatched[1]
    assert "orphan_tool_result" not in expected_matched[1]


def test_notes_of_a_memoised_turn_are_reported_on_every_request() -> None:
    marked = {
        "role": "user",
        "content": [{"type": "text", "text": PAD, "cache_control": {"type": "ephemeral"}}],
    }
    raw = session_turn([marked])
    assert "cache_control" in from_scratch(raw)[1]
    for _ in range(2):
        assert "cache_control" in translated(raw)[1]


def test_the_profile_is_part_of_an_assistant_turns_key() -> None:
    thinking = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": f"plan {PAD}", "signature": "s"},
            {"type": "text", "text": "done"},
        ],
    }
    raw = session_turn([{"role": "user", "content": "go"}, thinking, {"role": "user", "content": "next"}])
    with_reasoning, without = BackendProfile(send_reasoning_back=True), BackendProfile()
    expected = from_scratch(raw, with_reasoning), from_scratch(raw, without)
    for _ in range(2):
        assert translated(raw, with_reasoning) == expected[0]
        assert translated(raw, without) == expected[1]
    assert "reasoning_content" in expected[0][0]["messages"][1]
    assert "reasoning_content" not in expected[1][0]["messages"][1]


def test_merging_neighbours_never_writes_into_a_memoised_turn() -> None:
    """An assistant turn followed by a user turn that translates to nothing is merged with the next assistant
    turn; the memoised first turn must still translate alone as it did."""
    alone = {"role": "assistant", "content": [{"type": "text", "text": f"first {PAD}"}]}
    empty = {"role": "user", "content": [{"type": "mystery_block", "data": PAD}]}
    after = {"role": "assistant", "content": [{"type": "text", "text": "second"}]}
    opening = {"role": "user", "content": "go"}
    short = session_turn([opening, alone, {"role": "user", "content": "next"}])
    merged = session_turn([opening, alone, empty, after, {"role": "user", "content": "next"}])
    expected_short, expected_merged = from_scratch(short), from_scratch(merged)
    assert [m["role"] for m in expected_merged[0]["messages"]] == ["user", "assistant", "user"]
    translated(short)  # memoises the lone assistant turn
    for _ in range(2):
        assert translated(merged) == expected_merged
        assert translated(short) == expected_short


def test_a_turn_merged_from_two_messages_is_never_served_as_its_first_message() -> None:
    first = {"role": "user", "content": f"first {PAD}"}
    second = {"role": "user", "content": "second"}
    alone, together = session_turn([first]), session_turn([first, second])
    expected_alone, expected_together = from_scratch(alone), from_scratch(together)
    for _ in range(2):
        assert translated(alone) == expected_alone
        assert translated(together) == expected_together
    assert "second" in expected_together[0]["messages"][-1]["content"]


def test_a_memoised_turns_messages_are_serialised_once_and_exactly_as_orjson_does() -> None:
    history = [{"role": "user", "content": f"hello {PAD}"}, call("toolu_1", PAD), result("toolu_1")]
    raw = session_turn(history)
    cold = serialize_body(from_scratch(raw)[0], "max_tokens")
    first = serialize_body(translated(raw)[0], "max_tokens")
    again = serialize_body(translated(raw)[0], "max_tokens")
    assert first.with_member("max_tokens", 5) == cold.with_member("max_tokens", 5)
    assert all(a is b for a, b in zip(first.message_json, again.message_json, strict=True))  # kept
    assert [orjson.loads(j) for j in again.message_json] == translated(raw)[0]["messages"]
    sharedtext._turns.clear()  # the turns leave the memo: their messages' JSON goes with them
    assert not knownmessages._known
    fresh = serialize_body(translated(raw)[0], "max_tokens")
    assert not any(a is b for a, b in zip(first.message_json, fresh.message_json, strict=True))
    assert fresh.message_json == first.message_json


def test_a_turn_too_large_to_keep_leaves_nothing_behind(monkeypatch) -> None:
    raw = session_turn([{"role": "user", "content": f"hello {PAD}"}, call("toolu_1", PAD), result("toolu_1")])
    expected = from_scratch(raw)
    monkeypatch.setattr(sharedtext._turns, "max_size", 10)  # every turn is over the budget on its own
    sharedtext._turns.clear()
    for _ in range(2):
        assert translated(raw) == expected
    assert len(sharedtext._turns) == 0 and not knownmessages._known


def test_a_memoised_turns_messages_keep_their_estimate_and_it_is_the_estimate() -> None:
    from proxy import tokens

    raw = session_turn([{"role": "user", "content": f"hello {PAD}"}, call("toolu_1", PAD), result("toolu_1")])
    cold_body = from_scratch(raw)[0]
    cold = tokens.estimate_tokens(cold_body, 0, serialize_body(cold_body, "max_tokens").message_json)
    tokens._message_estimates.clear()
    for _ in range(2):
        body = translated(raw)[0]
        assert tokens.estimate_tokens(body, 0, serialize_body(body, "max_tokens").message_json) == cold
    kept = [knownmessages.known_message(m) for m in body["messages"]]
    assert all(known is not None and known.tokens is not None for known in kept)
    assert sum(known.tokens for known in kept) + tokens.PROMPT_OVERHEAD + 3 * tokens.MESSAGE_OVERHEAD == cold


def test_a_copy_of_a_memoised_message_is_serialised_as_itself() -> None:
    raw = session_turn([{"role": "user", "content": f"hello {PAD}"}])
    translated(raw)
    (message,) = translated(raw)[0]["messages"]
    serialize_body({"messages": [message]}, "max_tokens")  # its JSON is kept now
    changed = {**message, "content": "other"}
    assert serialize_body({"messages": [changed]}, "max_tokens").message_json == [orjson.dumps(changed)]


def test_real_claude_code_turns_translate_as_from_scratch_when_resent() -> None:
    for captured in captured_requests():
        raw = orjson.dumps(captured.body)
        expected = from_scratch(raw)
        for _ in range(2):
            assert translated(raw) == expected


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_requests, st.integers(1, 3), st.booleans())
def test_any_request_translates_as_from_scratch_when_resent_and_grown(
    body: dict, keep: int, reasoning: bool
) -> None:
    """Generated requests, their messages padded so that the parser shares them: a resend, and a turn that drops
    its last messages, translate exactly as from cold memos (or fail the same way)."""
    if not isinstance(body.get("messages"), list):
        return
    body["messages"] = [
        {**m, "content": [{"type": "text", "text": PAD}, *m["content"]]}
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        else m
        for m in body["messages"]
    ]
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    shorter = json.dumps({**body, "messages": body["messages"][:keep]}, ensure_ascii=False)
    profile = BackendProfile(send_reasoning_back=reasoning)
    outcomes = []
    for data in (raw, shorter.encode("utf-8", "surrogatepass")):
        try:
            expected = copy.deepcopy(from_scratch(data, profile))
        except (AnthropicError, orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError):
            continue
        outcomes.append((data, expected))
    for data, expected in outcomes * 2:
        assert translated(data, profile) == expected
