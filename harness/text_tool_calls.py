"""Tool calls written as text in a run: the scorer notes them on `model_no_tool` turns (detection in
proxy/translate/textcalls.py), and `ccbench run` sums them up, because telling them apart from a model that did
not try is the difference between "change the model" and "add a server flag". Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.report_data import TurnView
from proxy.translate.textcalls import PROBLEM_PREFIX, SERVER_HINT


def count_text_tool_calls(turns: Iterable[TurnView]) -> tuple[int, int]:
    """(turns whose call was written as text, turns without a tool call)."""
    written = no_tool = 0
    for turn in turns:
        if turn.failure_class != "model_no_tool":
            continue
        no_tool += 1
        written += any(problem.startswith(PROBLEM_PREFIX) for problem in turn.problems)
    return written, no_tool


def text_tool_call_lines(turns: Iterable[TurnView]) -> list[str]:
    """The lines for a run with such turns (else nothing)."""
    written, no_tool = count_text_tool_calls(turns)
    if not written:
        return []
    return [
        f"{written} of {no_tool} turns without a tool call wrote one as text instead:",
        f"      → {SERVER_HINT}",
    ]
