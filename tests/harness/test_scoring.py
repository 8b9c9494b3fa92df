"""The scorer: per-turn verdicts and failure classes, null rates, percentiles, pass^k, the summary."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.scenarios import Expectation, Turn
from harness.scoring import (
    judge_tool_calls,
    pass_hat_k,
    percentile,
    scenario_entry,
    score_count_tokens_call,
    score_messages_turn,
    summarize,
)
from harness.validation import ResponseCheck
from tests.support import COUNT_TOKENS_CALL_FIELDS

WEATHER = {
    "name": "get_weather",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"location": {"type": "string"}, "when": {"type": "string", "format": "date-time"}},
        "required": ["location"],
    },
}
TIME = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
}


def turn(reference: list[dict] | None = None, **expect) -> Turn:
    request = {"max_tokens": 10, "messages": [{"role": "user", "content": "x"}], "tools": [WEATHER, TIME]}
    return Turn(index=0, request=request, reference=reference, expect=Expectation(**expect))


TOOL_TURN = turn([{"type": "tool_use", "name": "get_weather", "input": {"location": "Paris"}}])
TEXT_TURN = turn([{"type": "text", "text": "hello"}])


def use(name: str, args: dict) -> dict:
    return {"type": "tool_use", "id": "toolu_1", "name": name, "input": args}


def answer(
    *blocks: dict,
    stop_reason: str = "tool_use",
    problems=(),
    error=None,
    ttft=5.0,
    latency=25.0,
    output_tokens=20,
) -> ResponseCheck:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 100, "output_tokens": output_tokens},
    }
    return ResponseCheck(
        problems=list(problems),
        message=None if error else message,
        error=error,
        ttft_ms=ttft,
        latency_ms=latency,
    )


def test_good_tool_call_passes():
    entry = score_messages_turn(
        TOOL_TURN, answer(use("get_weather", {"location": "Paris"})), stream=True, repeat=0
    )
    assert entry["passed"] and entry["tool_call_success"] is True and entry["failure_class"] is None
    assert entry["tool_calls"] == [{"name": "get_weather", "input": {"location": "Paris"}, "valid": True}]
    assert entry["expected_tools"] == ["get_weather"]


def test_unknown_format_and_schema_keyword_do_not_fail():
    args = {"location": "Paris", "when": "tomorrow-ish"}
    assert judge_tool_calls(TOOL_TURN, [use("get_weather", args)]).failure is None


@pytest.mark.parametrize(
    ("blocks", "failure"),
    [
        ([{"type": "text", "text": "Paris is sunny"}], "model_no_tool"),
        ([use("get_forecast", {"location": "Paris"})], "model_wrong_tool"),
        ([use("get_weather", {})], "model_bad_arguments"),
        ([use("get_weather", {"location": 7})], "model_bad_arguments"),
    ],
)
def test_bad_tool_calls_fail_with_their_class(blocks, failure):
    entry = score_messages_turn(TOOL_TURN, answer(*blocks), stream=True, repeat=0)
    assert entry["tool_call_success"] is False
    assert entry["failure_class"] == failure
    assert entry["schema_valid"] is True


def test_pinned_names_exact_and_subset():
    pinned = turn(tools=("get_weather",))
    assert judge_tool_calls(pinned, [use("get_time", {"tz": "UTC"})]).failure == "model_wrong_tool"
    both = [use("get_weather", {"location": "a"}), use("get_time", {"tz": "UTC"})]
    assert judge_tool_calls(pinned, both).failure == "model_wrong_tool"  # exact: called set == pinned set
    subset = turn(tools=("get_weather", "get_time"), tools_match="subset")
    assert judge_tool_calls(subset, [use("get_time", {"tz": "UTC"})]).failure is None
    exact_two = turn(tools=("get_weather", "get_time"))
    assert judge_tool_calls(exact_two, [use("get_time", {"tz": "UTC"})]).failure == "model_wrong_tool"
    assert judge_tool_calls(exact_two, both).failure is None


def test_pinned_argument_fragment():
    pinned = turn(
        tools=("get_weather",), args={"get_weather": {"properties": {"location": {"pattern": "(?i)paris"}}}}
    )
    assert judge_tool_calls(pinned, [use("get_weather", {"location": "paris"})]).failure is None
    verdict = judge_tool_calls(pinned, [use("get_weather", {"location": "Rome"})])
    assert verdict.failure == "model_bad_arguments" and "pinned args" in verdict.problems[0]


def test_text_turn_spurious_call_and_other_checks():
    entry = score_messages_turn(
        TEXT_TURN, answer(use("get_weather", {"location": "x"})), stream=True, repeat=0
    )
    assert entry["spurious_tool_call"] and entry["failure_class"] == "model_spurious_tool"
    assert entry["tool_call_success"] is None and entry["text_only_expected"]
    ok = score_messages_turn(
        TEXT_TURN, answer({"type": "text", "text": "hi"}, stop_reason="end_turn"), stream=False, repeat=0
    )
    assert ok["passed"] and ok["ttft_ms"] is None  # no TTFT for a non-streaming turn
    stop_turn = turn([{"type": "text", "text": "a"}], stop_reason=("max_tokens",), text_excludes=("FOUR",))
    entry = score_messages_turn(
        stop_turn, answer({"type": "text", "text": "ONE FOUR"}, stop_reason="end_turn"), stream=True, repeat=0
    )
    assert entry["failure_class"] == "model_other" and len(entry["problems"]) == 2


def test_protocol_and_backend_failures_are_told_apart():
    broken = score_messages_turn(
        TOOL_TURN,
        answer(use("get_weather", {"location": "P"}), problems=["event 3: x"]),
        stream=True,
        repeat=0,
    )
    assert broken["schema_valid"] is False and broken["failure_class"] == "proxy_protocol"
    error = {"type": "overloaded_error", "message": "busy"}
    failed = score_messages_turn(TOOL_TURN, answer(error=error), stream=True, repeat=0)
    assert failed["schema_valid"] is True and failed["failure_class"] == "backend_error"
    assert failed["tool_call_success"] is False and failed["error"] == error
    gone = ResponseCheck(
        problems=["no response: refused"], error={"type": "no_response", "message": "refused"}
    )
    assert score_messages_turn(TOOL_TURN, gone, stream=True, repeat=0)["failure_class"] == "backend_error"


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0  # rank ceil(0.5 * 20) = 10
    assert percentile(values, 95) == 19.0  # rank ceil(0.95 * 20) = 19
    assert percentile(reversed(values), 100) == 20.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_pass_hat_k():
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(4, 3, 2) == pytest.approx(3 / 6)  # C(3,2)/C(4,2)
    assert pass_hat_k(5, 2, 1) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        pass_hat_k(2, 3, 1)


def test_null_rates_when_nothing_to_measure():
    text_only = scenario_entry(
        "s",
        "smoke",
        [],
        [
            score_messages_turn(
                TEXT_TURN,
                answer({"type": "text", "text": "hi"}, stop_reason="end_turn", ttft=None, latency=None),
                stream=False,
                repeat=0,
            )
        ],
        1,
    )
    summary = summarize([text_only], 1)
    assert summary["tool_call_success"] is None
    assert summary["count_tokens_validity"] is None and summary["count_tokens_error"] is None
    assert summary["ttft_ms"] == {"p50": None, "p95": None}
    assert summary["output_tokens_per_s"] is None
    assert summary["schema_validity"] == 1.0 and summary["spurious_tool_calls"] == 0.0
    empty = summarize([], 1)
    assert (
        empty["schema_validity"] is None
        and empty["scenario_pass_rate"] is None
        and empty["pass_hat_k"] is None
    )


def test_summary_rates_tokens_per_second_and_repeats():
    good = score_messages_turn(
        TOOL_TURN,
        answer(use("get_weather", {"location": "P"}), ttft=100.0, latency=600.0, output_tokens=50),
        stream=True,
        repeat=0,
    )
    bad = score_messages_turn(
        TOOL_TURN,
        answer(use("get_weather", {}), ttft=100.0, latency=1100.0, output_tokens=50),
        stream=True,
        repeat=1,
    )
    counted = score_count_tokens_call(
        TOOL_TURN,
        problems=[],
        input_tokens=90,
        error=None,
        latency_ms=1.0,
        backend_prompt_tokens=100,
        repeat=0,
    )
    entry = scenario_entry("s", "smoke", ["tool_use"], [good, bad], 2, [counted])
    assert entry["turns"] == [good, bad] and entry["count_tokens"] == [counted]
    assert entry["pass_rate"] == 0.5 and entry["pass_hat_k"] == 0.0 and not entry["passed"]
    assert entry["failure_class"] == "model_bad_arguments"
    summary = summarize([entry], 2)
    assert summary["turns"] == 2 and summary["tool_call_success"] == 0.5
    assert summary["output_tokens_per_s"] == pytest.approx(
        100 / 1.5
    )  # 100 tokens over 0.5 s + 1.0 s of decode
    assert summary["count_tokens_validity"] == 1.0 and summary["count_tokens_error"] == pytest.approx(0.1)
    assert summary["failure_classes"]["model_bad_arguments"] == 1
    assert [r["tool_call_success"] for r in summary["per_repeat"]] == [1.0, 0.0]
    assert [r["scenario_pass_rate"] for r in summary["per_repeat"]] == [1.0, 0.0]
    assert summary["scenario_pass_rate"] == 0.5


def test_a_failed_count_tokens_call_fails_its_scenario_but_no_turn_rate():
    """count_tokens calls are kept out of turns (and so out of every turn rate and percentile), yet a failed
    call still fails its (scenario, repeat), counts as an error and in failure_classes, as it always did."""
    turns = [
        score_messages_turn(
            TOOL_TURN,
            answer(use("get_weather", {"location": "P"}), ttft=10.0, latency=20.0),
            stream=True,
            repeat=r,
        )
        for r in (0, 1)
    ]
    gone = {"type": "api_error", "message": "upstream went away"}
    calls = [
        score_count_tokens_call(
            TOOL_TURN,
            problems=problems,
            input_tokens=90 if not problems else None,
            error=error,
            latency_ms=latency,
            backend_prompt_tokens=100,
            repeat=r,
        )
        for r, problems, error, latency in ((0, [], None, 900.0), (1, ["count_tokens HTTP 502"], gone, 5.0))
    ]
    entry = scenario_entry("s", "smoke", [], turns, 2, calls)
    assert (entry["passed"], entry["pass_rate"], entry["failure_class"]) == (False, 0.5, "backend_error")
    assert set(calls[1]) == set(COUNT_TOKENS_CALL_FIELDS)
    summary = summarize([entry], 2)
    assert (summary["turns"], summary["schema_validity"], summary["tool_call_success"]) == (2, 1.0, 1.0)
    assert summary["latency_ms"] == {"p50": 20.0, "p95": 20.0}  # the 900 ms count_tokens call is not a turn
    assert (summary["count_tokens_validity"], summary["count_tokens_error"]) == (0.5, pytest.approx(0.1))
    assert summary["errors"] == 1 and summary["failure_classes"]["backend_error"] == 1
    assert summary["scenario_pass_rate"] == 0.5
    assert [(r["errors"], r["scenario_pass_rate"]) for r in summary["per_repeat"]] == [(0, 1.0), (1, 0.0)]


def test_the_first_failure_is_taken_in_request_order():
    """A turn's count_tokens call was sent right after its messages call: its failure comes before the
    failure of a later turn, as when both were entries of one list."""
    later = replace(TOOL_TURN, index=1)
    broken_call = score_count_tokens_call(
        TOOL_TURN,
        problems=["bad"],
        input_tokens=None,
        error=None,
        latency_ms=1.0,
        backend_prompt_tokens=None,
        repeat=0,
    )
    turns = [
        score_messages_turn(TOOL_TURN, answer(use("get_weather", {"location": "P"})), stream=True, repeat=0),
        score_messages_turn(later, answer(use("get_weather", {})), stream=True, repeat=0),
    ]
    entry = scenario_entry("s", "smoke", [], turns, 1, [broken_call])
    assert entry["failure_class"] == "proxy_protocol"


def test_speed_percentiles_leave_out_error_answers():
    """A fast 400 ("prompt is too long", 80 ms) is not a fast answer: with 51 such errors in 67 turns a real
    llama-server run reported latency p50 82 ms under a TTFT p50 of 1,160 ms. Errors count in `errors`; TTFT,
    latency and tokens/s are measured on the answers."""
    answered = [
        score_messages_turn(
            TOOL_TURN,
            answer(use("get_weather", {"location": "P"}), ttft=ttft, latency=ttft + 500.0, output_tokens=50),
            stream=True,
            repeat=0,
        )
        for ttft in (1000.0, 1200.0)
    ]
    too_long = {"type": "invalid_request_error", "message": "prompt is too long: 12395 tokens > 7872 maximum"}
    errors = [
        score_messages_turn(TOOL_TURN, answer(error=too_long, ttft=None, latency=80.0), stream=True, repeat=0)
        for _ in range(3)
    ]
    cut = {"type": "api_error", "message": "backend stream ended early"}
    cut_mid_stream = score_messages_turn(
        TOOL_TURN, answer(error=cut, ttft=5.0, latency=None), stream=True, repeat=0
    )
    summary = summarize([scenario_entry("s", "smoke", [], [*answered, *errors, cut_mid_stream], 1)], 1)
    assert summary["errors"] == 4
    assert summary["latency_ms"] == {"p50": 1500.0, "p95": 1700.0}
    assert summary["ttft_ms"] == {"p50": 1000.0, "p95": 1200.0}
    assert summary["per_repeat"][0]["latency_ms_p95"] == 1700.0
    assert summary["output_tokens_per_s"] == pytest.approx(100 / 1.0)
    only_errors = summarize([scenario_entry("s", "smoke", [], errors, 1)], 1)
    assert only_errors["latency_ms"] == {"p50": None, "p95": None}  # nothing answered: null, not 80 ms
