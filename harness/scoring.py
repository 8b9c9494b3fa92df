"""Scoring (DESIGN section 6 + the INTERFACES extensions): per-turn verdicts, then the run summary.

Pure functions over what the replay measured, so every definition here is tested without a server. The
exact metric definitions are repeated in docs/readme/run.md; keep both in step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from harness.results_layout import request_order
from harness.scenarios import Turn
from harness.validation import ResponseCheck
from proxy.translate.textcalls import text_tool_call, text_tool_call_problem

FAILURE_CLASSES = (
    "proxy_protocol",
    "backend_error",
    "model_no_tool",
    "model_wrong_tool",
    "model_bad_arguments",
    "model_spurious_tool",
    "model_other",
)
NO_RESPONSE = "no_response"  # error type used when the client got no HTTP answer at all


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def pass_hat_k(n: int, c: int, k: int) -> float:
    """τ-bench pass^k: the chance that k runs drawn from n (c of them passed) all pass, C(c,k)/C(n,k)."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"pass^k needs 0 < k <= n and 0 <= c <= n (n={n}, c={c}, k={k})")
    return math.comb(c, k) / math.comb(n, k)


def rate(hits: int, total: int) -> float | None:
    """A fraction, or None when there is nothing to measure (never 1.0 by default)."""
    return hits / total if total else None


def _input_errors(schema: dict, instance: object) -> list[str]:
    """Validate a tool input against a JSON Schema; `$schema` is ignored, unknown formats do not fail."""
    schema = {k: v for k, v in schema.items() if k != "$schema"} if isinstance(schema, dict) else {}
    try:
        errors = list(Draft202012Validator(schema).iter_errors(instance))
    except SchemaError as exc:  # the offered schema itself is broken: report, do not crash
        return [f"unusable schema: {exc.message}"]
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:160]}" for e in errors[:3]]


@dataclass
class ToolVerdict:
    calls: list[dict]  # [{"name", "input", "valid"}] as in the results file
    problems: list[str]
    failure: str | None  # model_no_tool | model_wrong_tool | model_bad_arguments | None


def judge_tool_calls(turn: Turn, content: list[dict]) -> ToolVerdict:
    """Names offered, inputs valid against the tool's input_schema, pinned names and argument fragments."""
    offered, expect = turn.offered_tools, turn.expect
    calls, problems = [], []
    wrong = bad = False
    for block in (b for b in content if b.get("type") == "tool_use"):
        name, args = block.get("name", ""), block.get("input")
        errors: list[str] = []
        if name not in offered:
            errors.append(f"tool {name!r} was not offered")
            wrong = True
        else:
            arg_errors = _input_errors(offered[name], args)
            fragment = expect.args.get(name)
            if fragment is not None:
                arg_errors += [f"pinned args: {e}" for e in _input_errors(fragment, args)]
            if arg_errors:
                bad = True
                errors += [f"{name} input {e}" for e in arg_errors]
        problems += errors
        calls.append({"name": name, "input": args, "valid": not errors})
    if expect.tools is not None and calls:
        called, pinned = {c["name"] for c in calls}, set(expect.tools)
        matches = called == pinned if expect.tools_match == "exact" else called <= pinned
        if not matches:
            problems.append(f"called {sorted(called)}, expected {expect.tools_match} {sorted(pinned)}")
            wrong = True
    failure = None
    if not calls:
        failure = "model_no_tool"
    elif wrong:
        failure = "model_wrong_tool"
    elif bad:
        failure = "model_bad_arguments"
    return ToolVerdict(calls, problems, failure)


def _other_problems(turn: Turn, message: dict, text: str) -> list[str]:
    problems = []
    allowed = turn.expect.stop_reason
    if allowed is not None and message.get("stop_reason") not in allowed:
        problems.append(f"stop_reason {message.get('stop_reason')!r}, expected one of {list(allowed)}")
    problems += [f"text contains {s!r}" for s in turn.expect.text_excludes if s in text]
    return problems


def score_messages_turn(turn: Turn, check: ResponseCheck, *, stream: bool, repeat: int) -> dict:
    """One /v1/messages call -> its results-file turn entry (contract fields + extensions)."""
    message = check.message or {}
    content = [b for b in message.get("content") or [] if isinstance(b, dict)]
    text = "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
    failed = check.error is not None or not message
    verdict = judge_tool_calls(turn, [] if failed else content)
    problems = list(check.problems)
    failure: str | None = None
    if check.error is not None and check.error.get("type") == NO_RESPONSE:
        failure = "backend_error"
    elif not check.valid:
        failure = "proxy_protocol"
    elif failed:
        failure = "backend_error"
    if check.error is not None:
        problems.append(f"error: {check.error.get('type')}: {str(check.error.get('message'))[:300]}")
    tool_success: bool | None = None
    spurious = False
    if turn.uses_tools:
        tool_success = not failed and verdict.failure is None
        problems += verdict.problems
        if (
            not failed
            and verdict.failure == "model_no_tool"
            and (marker := text_tool_call(text, turn.offered_tools))
        ):
            problems.append(text_tool_call_problem(marker))
        failure = failure or verdict.failure
    else:
        spurious = bool(verdict.calls)
        if spurious:
            problems.append(f"tool call(s) {[c['name'] for c in verdict.calls]} on a text-only turn")
            failure = failure or "model_spurious_tool"
    if not failed:
        other = _other_problems(turn, message, text)
        problems += other
        failure = failure or ("model_other" if other else None)
    return {
        "index": turn.index,
        "stream": stream,
        "schema_valid": check.valid,
        "problems": problems,
        "expected_tools": turn.expected_tools,
        "tool_calls": verdict.calls,
        "tool_call_success": tool_success,
        "ttft_ms": check.ttft_ms if stream else None,
        "latency_ms": check.latency_ms,
        "output_tokens": check.output_tokens or 0,
        "repeat": repeat,
        "kind": "messages",  # always: checkers of the earlier layout (count_tokens in turns[]) filter on it
        "passed": failure is None,
        "failure_class": failure,
        "text_only_expected": not turn.uses_tools,
        "spurious_tool_call": spurious,
        "error": _error_entry(check.error),
        "stop_reason": message.get("stop_reason") if not failed else None,
    }


def _error_entry(error: dict | None) -> dict | None:
    if error is None:
        return None
    return {"type": str(error.get("type")), "message": str(error.get("message", ""))[:500]}


def prompt_tokens_of(usage: dict | None) -> int | None:
    """All prompt tokens the backend reported (uncached + cache read + cache write), or None."""
    usage = usage or {}
    parts = [usage.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    if not isinstance(parts[0], int):
        return None
    total = sum(p for p in parts if isinstance(p, int))
    return total or None


def score_count_tokens_call(
    turn: Turn,
    *,
    problems: list[str],
    input_tokens: int | None,
    error: dict | None,
    latency_ms: float | None,
    backend_prompt_tokens: int | None,
    repeat: int,
) -> dict:
    """One count_tokens call -> an entry of the scenario's `count_tokens` list (results_layout says why it is
    kept out of `turns`)."""
    valid = not problems
    failure = None if valid else ("backend_error" if error is not None else "proxy_protocol")
    relative_error = None
    if valid and backend_prompt_tokens and input_tokens is not None:
        relative_error = abs(input_tokens - backend_prompt_tokens) / backend_prompt_tokens
    return {
        "index": turn.index,
        "repeat": repeat,
        "schema_valid": valid,
        "problems": list(problems),
        "latency_ms": latency_ms,
        "passed": valid,
        "failure_class": failure,
        "error": _error_entry(error),
        "input_tokens": input_tokens,
        "backend_prompt_tokens": backend_prompt_tokens,
        "count_tokens_error": relative_error,
    }


def scenario_entry(
    scenario_id: str,
    suite: str,
    tags: list[str],
    turns: list[dict],
    repeats: int,
    count_tokens: list[dict] | None = None,
) -> dict:
    """A scenario's results entry: its messages turns, its count_tokens calls, and pass rate and pass^k over
    the repeats (a repeat passes when every turn and every count_tokens call in it passed)."""
    calls = list(count_tokens or [])
    everything = request_order(turns, calls)
    passed_runs = sum(all(t["passed"] for t in everything if t["repeat"] == r) for r in range(repeats))
    first_failure = next((t["failure_class"] for t in everything if t["failure_class"]), None)
    return {
        "id": scenario_id,
        "suite": suite,
        "tags": list(tags),
        "passed": passed_runs == repeats,
        "pass_rate": passed_runs / repeats,
        "pass_hat_k": pass_hat_k(repeats, passed_runs, repeats),
        "failure_class": first_failure,
        "turns": turns,
        "count_tokens": calls,
    }


def speed_samples(messages: list[dict]) -> tuple[list[float], list[float]]:
    """(TTFTs, latencies) the percentiles are taken over: answered turns only, TTFT from streaming ones only, so
    the two sets differ (the run's table says so when TTFT p50 exceeds latency p50)."""
    answered = [t for t in messages if t["error"] is None]
    ttfts = [t["ttft_ms"] for t in answered if t["ttft_ms"] is not None]
    return ttfts, [t["latency_ms"] for t in answered if t["latency_ms"] is not None]


def _metrics(scenarios: list[dict], repeat: int | None) -> dict:
    """Rates and percentiles over all turns (repeat=None) or over one repeat."""
    messages = [t for s in scenarios for t in s["turns"] if repeat is None or t["repeat"] == repeat]
    counts = [
        c for s in scenarios for c in s.get("count_tokens", []) if repeat is None or c["repeat"] == repeat
    ]
    tool_turns = [t for t in messages if t["tool_call_success"] is not None]
    text_turns = [t for t in messages if t["text_only_expected"]]
    # Speed is measured on answers, not on errors: a 400 "prompt is too long" comes back in 80 ms and would
    # make a model that cannot take the prompt look fast (and hand a gate a latency "improvement").
    answered = [t for t in messages if t["error"] is None]
    ttfts, latencies = speed_samples(messages)
    decode = [
        (t["output_tokens"], (t["latency_ms"] - t["ttft_ms"]) / 1000.0)
        for t in answered
        if t["ttft_ms"] is not None
        and t["latency_ms"] is not None
        and t["latency_ms"] > t["ttft_ms"]
        and t["output_tokens"] > 0
    ]
    ct_errors = [t["count_tokens_error"] for t in counts if t.get("count_tokens_error") is not None]
    entries = [
        s["turns"] + s.get("count_tokens", []) for s in scenarios
    ]  # a failed count_tokens call fails its run
    runs = [(e, r) for e in entries for r in sorted({t["repeat"] for t in e})]
    runs = [(e, r) for e, r in runs if repeat is None or r == repeat]
    run_passes = sum(all(t["passed"] for t in e if t["repeat"] == r) for e, r in runs)
    decode_seconds = sum(d for _, d in decode)
    return {
        "turns": len(messages),
        "errors": sum(
            t["error"] is not None for t in messages + counts
        ),  # both: a failed request is an error
        "schema_validity": rate(sum(t["schema_valid"] for t in messages), len(messages)),
        "tool_call_success": rate(sum(bool(t["tool_call_success"]) for t in tool_turns), len(tool_turns)),
        "count_tokens_validity": rate(sum(t["schema_valid"] for t in counts), len(counts)),
        "ttft_ms": {"p50": percentile(ttfts, 50), "p95": percentile(ttfts, 95)},
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "output_tokens_per_s": sum(n for n, _ in decode) / decode_seconds if decode_seconds > 0 else None,
        "text_turns": len(text_turns),
        "spurious_tool_calls": rate(sum(t["spurious_tool_call"] for t in text_turns), len(text_turns)),
        "count_tokens_error": sum(ct_errors) / len(ct_errors) if ct_errors else None,
        "scenario_pass_rate": rate(run_passes, len(runs)),
    }


def summarize(scenarios: list[dict], repeats: int) -> dict:
    """The results-file summary: contract fields, then the extensions (failure classes, per-repeat)."""
    overall = _metrics(scenarios, None)
    failure_classes = dict.fromkeys(FAILURE_CLASSES, 0)
    for s in scenarios:
        for t in s["turns"] + s.get("count_tokens", []):
            if t["failure_class"]:
                failure_classes[t["failure_class"]] = failure_classes.get(t["failure_class"], 0) + 1
    per_repeat = []
    for r in range(repeats):
        m = _metrics(scenarios, r)
        per_repeat.append(
            {
                "schema_validity": m["schema_validity"],
                "tool_call_success": m["tool_call_success"],
                "ttft_ms_p95": m["ttft_ms"]["p95"],
                "latency_ms_p95": m["latency_ms"]["p95"],
                "errors": m["errors"],
                "scenario_pass_rate": m["scenario_pass_rate"],
            }
        )
    hats = [s["pass_hat_k"] for s in scenarios]
    return {
        "scenarios": len(scenarios),
        **overall,
        "repeats": repeats,
        "pass_hat_k": sum(hats) / len(hats) if hats else None,
        "failure_classes": failure_classes,
        "per_repeat": per_repeat,
    }
