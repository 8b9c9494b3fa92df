"""End to end: reference runs score 1.0, the translation round trip is lossless, a bad model scores low."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import anthropic
import pytest
from click.testing import CliRunner

from harness.backends import resolve_target
from harness.cli import main
from harness.reference import ReferenceBackend
from harness.replay import (
    Job,
    RunOptions,
    in_process_proxy,
    reference_answers,
    run_scenarios,
    score_jobs,
    turn_key,
)
from harness.report_data import ResultsError, load_results_file
from harness.results import ResultsFileError, contract_problems, load_results
from harness.scenarios import load_scenarios, resolve_turns, select_scenarios
from harness.validation import ResponseCheck, schema_problems

PROJECT_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SDK_PARAMS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "tools",
    "tool_choice",
    "stop_sequences",
    "metadata",
}


def scenarios(*suites: str):
    return [resolve_turns(s) for s in select_scenarios(load_scenarios(PROJECT_SCENARIOS), list(suites), [])]


def test_reference_run_scores_perfectly_for_every_suite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./scenarios here: the folder shipped next to the package is used
    out = tmp_path / "x.json"
    result = CliRunner().invoke(main, ["run", "--out", str(out)])  # no --suite: every suite
    assert result.exit_code == 0, result.output
    results = load_results(out)
    assert contract_problems(results) == []
    summary = results["summary"]
    assert summary["schema_validity"] == 1.0
    assert summary["tool_call_success"] == 1.0
    assert summary["spurious_tool_calls"] == 0.0
    assert summary["count_tokens_validity"] == 1.0
    assert summary["scenario_pass_rate"] == 1.0 and summary["errors"] == 0
    assert {"smoke", "claude-code"} <= {s["suite"] for s in results["scenarios"]}
    failed = [(s["id"], t["problems"]) for s in results["scenarios"] for t in s["turns"] if not t["passed"]]
    assert failed == []
    # load_results and the report readers share one schema_version check and message
    other = tmp_path / "v2.json"
    other.write_text(json.dumps({**results, "schema_version": 2}))
    with pytest.raises(ResultsFileError, match="schema_version 2 is not supported"):
        load_results(other)
    with pytest.raises(ResultsError, match="schema_version 2 is not supported"):
        load_results_file(other)
    # ... and one contract check and message
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(json.dumps({**results, "summary": {**results["summary"], "errors": -1}}))
    expected = "does not follow the results contract: summary.errors: -1 is less than the minimum of 0"
    with pytest.raises(ResultsFileError, match=expected):
        load_results(corrupt)
    with pytest.raises(ResultsError, match=expected):
        load_results_file(corrupt)
    assert results["backend"]["preset"] == "reference" and results["model"] == "ccbench-reference"
    stop_reasons = {s["id"]: s["turns"][0]["stop_reason"] for s in results["scenarios"]}
    assert stop_reasons["smoke-max-tokens"] == "max_tokens"
    assert stop_reasons["smoke-parallel-calls"] == "tool_use"


def _visible(blocks: list[dict]) -> tuple[str, list[tuple[str, dict]]]:
    text = "".join(b.get("text", "") for b in blocks if b["type"] == "text")
    return text, [(b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]


async def test_round_trip_through_the_proxy_is_lossless_for_the_sdk():
    """Every reference turn, streamed through the proxy to the official SDK, comes back unchanged."""
    chosen = scenarios("smoke", "claude-code")
    target = resolve_target("openai", "http://127.0.0.1:1/v1", "ccbench-reference")
    async with ReferenceBackend(reference_answers(chosen)) as backend:
        target = type(target)(target.preset, backend.base_url, "ccbench-reference")
        async with in_process_proxy(target, None, RunOptions(target=target, timeout=30)) as root:
            client = anthropic.AsyncAnthropic(base_url=root, api_key="test", max_retries=0, timeout=30)
            checked = 0
            for scenario in chosen:
                for turn in scenario.turns:
                    if turn.request.get("stop_sequences") or turn.expect.stop_reason == ("max_tokens",):
                        continue  # cut on purpose: covered by the scoring run
                    params = {k: v for k, v in turn.request.items() if k in SDK_PARAMS}
                    extra = {k: v for k, v in turn.request.items() if k not in SDK_PARAMS and k != "stream"}
                    params["model"] = "ccbench-reference"
                    headers = {"x-ccbench-turn": turn_key(scenario.id, turn.index)}
                    stream_cm = client.messages.stream(**params, extra_headers=headers, extra_body=extra)
                    async with stream_cm as stream:
                        final = await stream.get_final_message()
                    got = _visible([b.model_dump() for b in final.content])
                    assert got == _visible(turn.reference), (scenario.id, turn.index)
                    assert final.stop_reason == ("tool_use" if got[1] else "end_turn")
                    checked += 1
            await (
                client.close()
            )  # while the loop runs (a collected client schedules its close on a closed loop)
            assert checked >= 20


def first_tool_with_empty_input(key: str, body: dict) -> list[dict]:
    """A bad model: always calls the first offered tool with {} (or says "ok" when no tool is offered)."""
    tools = body.get("tools") or []
    if not tools:
        return [{"type": "text", "text": "ok"}]
    return [{"type": "tool_use", "name": tools[0]["function"]["name"], "input": {}}]


async def test_bad_model_scores_low_on_tool_calls_but_keeps_schema_validity():
    chosen = scenarios("smoke", "claude-code")
    async with ReferenceBackend(responder=first_tool_with_empty_input, model="bad-model") as backend:
        target = resolve_target("openai", backend.base_url, None)
        options = RunOptions(target=target, concurrency=4, timeout=30)
        replay = await run_scenarios(chosen, options)
        resolved, summary, scored = replay.target, replay.summary, replay.scenarios
    assert resolved.model == "bad-model"  # discovered from GET /v1/models
    assert summary["schema_validity"] == 1.0
    assert summary["tool_call_success"] is not None and summary["tool_call_success"] < 0.2
    assert summary["spurious_tool_calls"] > 0.5
    classes = summary["failure_classes"]
    assert classes["model_bad_arguments"] > 0 and classes["model_wrong_tool"] > 0
    assert classes["model_spurious_tool"] > 0 and classes["proxy_protocol"] == 0
    by_id = {s["id"]: s for s in scored}
    assert by_id["smoke-single-tool"]["failure_class"] == "model_bad_arguments"
    assert by_id["smoke-tool-choice-among"]["failure_class"] == "model_wrong_tool"
    assert by_id["smoke-irrelevance"]["failure_class"] == "model_spurious_tool"


async def test_anthropic_preset_goes_straight_to_the_backend_and_repeats():
    """The proxy itself stands in for a native /v1/messages server; --repeat 2 gives per-repeat numbers."""
    chosen = scenarios("smoke")
    async with ReferenceBackend(reference_answers(chosen)) as backend:
        inner = resolve_target("openai", backend.base_url, "ccbench-reference")
        async with in_process_proxy(inner, None, RunOptions(target=inner, timeout=30)) as root:
            options = RunOptions(target=resolve_target("anthropic", root, None), repeats=2, timeout=30)
            replay = await run_scenarios(chosen, options)
            requests_seen = len(backend.requests)
    resolved, summary, scored = replay.target, replay.summary, replay.scenarios
    assert resolved.base_url == root and resolved.model  # model discovered from the proxy's /v1/models
    assert summary["schema_validity"] == 1.0 and summary["tool_call_success"] == 1.0
    assert summary["repeats"] == 2 and len(summary["per_repeat"]) == 2 and summary["pass_hat_k"] == 1.0
    assert all(s["pass_rate"] == 1.0 for s in scored)
    messages_turns = sum(len(s["turns"]) for s in scored)
    assert summary["turns"] == messages_turns and requests_seen == messages_turns


def test_count_tokens_calls_in_the_results_file(tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        main,
        ["run", "--scenarios", str(PROJECT_SCENARIOS), "--scenario", "smoke-count-tokens", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1 and data["summary"]["scenarios"] == 1
    (scenario,) = data["scenarios"]
    assert [t["kind"] for t in scenario["turns"]] == ["messages"] and data["summary"]["turns"] == 1
    (counted,) = scenario["count_tokens"]
    assert counted["input_tokens"] > 0 and counted["backend_prompt_tokens"] > 0
    assert data["summary"]["count_tokens_error"] is not None


def test_errors_with_the_reference_backend_blame_ccbench():
    """The reference only replays recorded answers: an error there is ccbench's, not the backend's."""
    (scenario,) = [s for s in scenarios("smoke") if s.id == "smoke-single-tool"]
    error = ResponseCheck(error={"type": "api_error", "message": "boom"})
    jobs = [Job(scenario, scenario.turns[0], 0, True, "messages", check=error)]
    (real,) = score_jobs([scenario], jobs, 1)
    (ref,) = score_jobs([scenario], jobs, 1, reference=True)
    assert real["failure_class"] == "backend_error" and ref["failure_class"] == "proxy_protocol"


async def test_proxy_models_list_and_errors_match_the_schemas():
    """The other shapes a client reads: GET /v1/models and the error envelope of a bad request."""
    target = resolve_target("openai", "http://127.0.0.1:1/v1", "ccbench-reference")
    async with ReferenceBackend({}) as backend:
        target = type(target)(target.preset, backend.base_url, "ccbench-reference")
        async with (
            in_process_proxy(target, None, RunOptions(target=target, timeout=30)) as root,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        ):
            async with http.get(f"{root}/v1/models") as resp:
                assert resp.status == 200
                assert schema_problems("models_list", await resp.json()) == []
            async with http.post(f"{root}/v1/messages", json={"model": "m", "max_tokens": 5}) as resp:
                assert resp.status == 400
                assert schema_problems("error", await resp.json()) == []
            bad_turn = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(
                f"{root}/v1/messages", json=bad_turn, headers={"x-ccbench-turn": "nope"}
            ) as resp:
                assert (
                    resp.status >= 400
                )  # the reference has no answer for that turn: an error, in the envelope
                assert schema_problems("error", await resp.json()) == []


async def test_concurrency_follows_the_backends_parallel_slots() -> None:
    """More requests than llama.cpp has slots would only time its queue: by default a run sends as many at
    once as the backend serves (total_slots), and 4 when it does not say."""
    from harness.backends import DEFAULT_CONCURRENCY, backend_parallelism
    from tests.proxy.fake_backend import FakeBackend

    async with FakeBackend(llamacpp=True, total_slots=1) as single, FakeBackend() as unknown:
        assert await backend_parallelism(resolve_target("llamacpp", single.url, "m")) == 1
        assert await backend_parallelism(resolve_target("vllm", unknown.url, "m")) == DEFAULT_CONCURRENCY
    for nonsense in (0, -1, True, 10**6):  # a slot count that cannot be real is no slot count
        async with FakeBackend(llamacpp=True, total_slots=nonsense) as odd:
            assert await backend_parallelism(resolve_target("llamacpp", odd.url, "m")) == DEFAULT_CONCURRENCY
