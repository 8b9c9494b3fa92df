"""Tool calls written as text in a run: the scorer notes them on `model_no_tool` turns (detection in
proxy/translate/textcalls.py), and `ccbench run` sums them up, because telling them apart from a model that did
not try is the difference between "change the model" and "add a server flag". Pure functions.
"""

from __future__ import annotations

from proxy.translate.textcalls import PROBLEM_PREFIX, SERVER_HINT, text_tool_call, text_tool_call_problem

__all__ = [
    "PROBLEM_PREFIX",
    "count_text_tool_calls",
    "text_tool_call",
    "text_tool_call_lines",
    "text_tool_call_problem",
]


def count_text_tool_calls(scenarios: list[dict]) -> tuple[int, int]:
    """(turns whose call was written as text, turns without a tool call) over a results file's scenarios."""
    written = no_tool = 0
    for scenario in scenarios:
        for turn in scenario.get("turns") or []:
            if not isinstance(turn, dict) or turn.get("failure_class") != "model_no_tool":
                continue
            no_tool += 1
            problems = turn.get("problems") or []
            written += any(isinstance(p, str) and p.startswith(PROBLEM_PREFIX) for p in problems)
    return written, no_tool


def text_tool_call_lines(scenarios: list[dict]) -> list[str]:
    """The line `ccbench run` prints under its table when it saw such turns (else nothing)."""
    written, no_tool = count_text_tool_calls(scenarios)
    if not written:
        return []
    return [
        f"{written} of {no_tool} turns without a tool call wrote one as text instead:",
        f"      → {SERVER_HINT}",
    ]
