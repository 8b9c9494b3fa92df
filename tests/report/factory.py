"""Crafted results files (DESIGN section 5 + the INTERFACES extensions) for the report and gate tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any


def turn(
    index: int = 0,
    *,
    passed: bool = True,
    failure_class: str | None = None,
    problems: list[str] | None = None,
    tool_calls: list[dict] | None = None,
    expected_tools: list[str] | None = None,
    repeat: int = 0,
    latency_ms: float = 400.0,
) -> dict[str, Any]:
    """One scored turn; a failing turn defaults to model_no_tool with no call."""
    calls = (
        tool_calls
        if tool_calls is not None
        else ([{"name": "Read", "input": {"file_path": "/a"}, "valid": True}] if passed else [])
    )
    return {
        "index": index,
        "repeat": repeat,
        "kind": "messages",
        "stream": True,
        "schema_valid": failure_class != "proxy_protocol",
        "problems": problems
        if problems is not None
        else ([] if passed else ["expected a tool_use, got text only"]),
        "expected_tools": expected_tools if expected_tools is not None else ["Read"],
        "tool_calls": calls,
        "tool_call_success": passed,
        "passed": passed,
        "failure_class": None if passed else (failure_class or "model_no_tool"),
        "ttft_ms": 100.0,
        "latency_ms": latency_ms,
        "output_tokens": 20,
        "error": None,
    }


def scenario(
    scenario_id: str, turns: list[dict] | None = None, *, suite: str = "smoke", repeats: int = 1
) -> dict:
    turns = turns if turns is not None else [turn(0)]
    per_repeat = [all(t["passed"] for t in turns if t["repeat"] == r) for r in range(repeats)]
    failing = next((t for t in turns if not t["passed"]), None)
    return {
        "id": scenario_id,
        "suite": suite,
        "tags": ["tool_use", "stream"],
        "passed": all(per_repeat),
        "pass_rate": sum(per_repeat) / repeats,
        "pass_hat_k": 1.0 if all(per_repeat) else 0.0,
        "failure_class": failing["failure_class"] if failing else None,
        "turns": turns,
    }


DEFAULT_SUMMARY: dict[str, Any] = {
    "scenarios": 3,
    "turns": 3,
    "errors": 0,
    "schema_validity": 1.0,
    "tool_call_success": 0.9,
    "count_tokens_validity": 1.0,
    "ttft_ms": {"p50": 100.0, "p95": 200.0},
    "latency_ms": {"p50": 400.0, "p95": 800.0},
    "output_tokens_per_s": 40.0,
    "text_turns": 1,
    "spurious_tool_calls": 0.0,
    "repeats": 1,
}


def results(
    model: str = "qwen3-8b",
    preset: str = "vllm",
    scenarios: list[dict] | None = None,
    per_repeat: list[dict] | None = None,
    **summary: Any,
) -> dict[str, Any]:
    """A complete results file; keyword arguments override summary fields (ttft_p95=… / latency_p95=… too)."""
    body = copy.deepcopy(DEFAULT_SUMMARY)
    for key in ("ttft", "latency"):
        for pct in ("p50", "p95"):
            if (value := summary.pop(f"{key}_{pct}", None)) is not None:
                body[f"{key}_ms"][pct] = value
    body.update(summary)
    if per_repeat is not None:
        body["per_repeat"] = per_repeat
        body["repeats"] = len(per_repeat)
    return {
        "schema_version": 1,
        "ccbench_version": "0.1.0",
        "created_at": "2026-11-25T12:00:00Z",
        "backend": {"preset": preset, "base_url": "http://127.0.0.1:8000/v1"},
        "model": model,
        "summary": body,
        "scenarios": scenarios
        if scenarios is not None
        else [scenario("read-file"), scenario("edit-file"), scenario("grep")],
    }


def repeats(
    tool: list[float], ttft_p95: list[float], latency_p95: list[float], errors: list[int] | None = None
) -> list[dict]:
    """summary.per_repeat entries from per-metric value lists."""
    errors = errors or [0] * len(tool)
    return [
        {
            "schema_validity": 1.0,
            "tool_call_success": t,
            "ttft_ms_p95": f,
            "latency_ms_p95": lat,
            "errors": e,
            "scenario_pass_rate": 1.0,
        }
        for t, f, lat, e in zip(tool, ttft_p95, latency_p95, errors, strict=True)
    ]


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path
