"""Why a run's turns failed, in words a user acts on: tool calls the server left as text, then the most frequent
errors with their fix. `ccbench run` prints it under its table and `ccbench gate` under its verdict (terminal
and Markdown), so "tool-call success dropped 40 points" comes with "the server's tool parser is off" when that
is the cause: a configuration to fix, not a model to reject.
"""

from __future__ import annotations

from harness.error_digest import digest_lines, error_digest
from harness.report_data import RunView
from harness.text_tool_calls import text_tool_call_lines


def diagnose(run: RunView) -> list[str]:
    turns = [turn for scenario in run.scenarios for turn in scenario.turns]
    return text_tool_call_lines(turns) + digest_lines(error_digest(turn.error for turn in turns))
