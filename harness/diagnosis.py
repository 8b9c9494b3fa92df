"""Why a run's turns failed, in words a user acts on: tool calls the server left as text, answers cut at
max_tokens, then the most frequent errors with their fix. `ccbench run` prints it under its table and
`ccbench gate` under its verdict (terminal and Markdown), so "tool-call success dropped 40 points" comes with "the server's tool parser is off" when that
is the cause: a configuration to fix, not a model to reject.
"""

from __future__ import annotations

from harness.error_digest import digest_lines, error_digest
from harness.report_data import RunView, TurnView
from harness.text_tool_calls import text_tool_call_lines


def diagnose(run: RunView) -> list[str]:
    turns = [turn for scenario in run.scenarios for turn in scenario.turns]
    return (
        text_tool_call_lines(turns)
        + cut_turn_lines(turns, run.conditions.get("max_output_tokens"))
        + digest_lines(error_digest(turn.error for turn in turns))
    )


def cut_turn_lines(turns: list[TurnView], cap: object) -> list[str]:
    """Failed turns whose answer ended at max_tokens: the model was still writing. With the run's own cap that
    is the cap (raise it); without one, a model that writes until Claude Code's 32,000-token limit (or what the
    context leaves) without finishing an answer rambles or repeats itself."""
    failed = [t for t in turns if not t.passed and t.kind == "messages"]
    cut = sum(t.stop_reason == "max_tokens" for t in failed)
    if not cut:
        return []
    if isinstance(cap, int):
        hint = (
            f"the run's --max-output-tokens {cap:,} cut them before they were done: raise it (or drop it) "
            "when a model needs more room to reach its tool call"
        )
    else:
        hint = (
            "the model wrote until the request's max_tokens without finishing its answer (it rambles or "
            "repeats itself): check its chat template and sampling settings (temperature, repetition "
            "penalty); --max-output-tokens bounds the time such turns take"
        )
    return [f"{cut} of {len(failed)} failed turns stopped at max_tokens, still writing:", f"      → {hint}"]
