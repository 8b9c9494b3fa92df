"""Why a run's turns failed, in words a user acts on: tool calls the server left as text, the main failure
class, answers cut at max_tokens, then the most frequent errors with their fix. `ccbench run` prints it under
its table, `ccbench compare` under its tables and `ccbench gate` under its verdict (terminal and Markdown), so
"tool-call success dropped 40 points" comes with "the server's tool parser is off" when that is the cause: a
configuration to fix, not a model to reject.

The cause comes before its symptoms: a model that never calls a tool writes text until max_tokens, and saying
only "stopped at max_tokens" would send the user to the wrong setting.
"""

from __future__ import annotations

from collections import Counter

from harness.error_digest import digest_lines, error_digest
from harness.report_data import RunView, TurnView
from harness.text_tool_calls import count_text_tool_calls, text_tool_call_lines

# Above this many tokens, a turn still writing at max_tokens has run long enough (minutes on a small CPU
# model) for --max-output-tokens to be worth naming; at or below it (the smoke suite asks for at most 128) a
# cap would only cut the tool calls the benchmark measures, so the option is not offered as a remedy.
LONG_BUDGET = 1024
_SEE_PROBLEMS = "each turn's problems say which (the results file, or --html)"
# failure class -> (what the model did, what to do); backend_error is the error digest's to explain.
CLASS_LINES: dict[str, tuple[str, str]] = {
    "model_no_tool": (
        "the model answered in text where the recorded turn called a tool",
        "use a model with tool calling, served with its tool-call parser on (llama-server --jinja; vLLM "
        "--enable-auto-tool-choice --tool-call-parser NAME; Ollama: a model tagged tools): a model that never "
        "calls a tool fails every tool turn, whatever the other settings",
    ),
    "model_wrong_tool": (
        "the model called a tool the recorded turn did not call",
        f"{_SEE_PROBLEMS}; a name that was never offered points at the chat template the tools are rendered with",
    ),
    "model_bad_arguments": (
        "the model's tool input broke the tool's input_schema or the scenario's pinned arguments",
        _SEE_PROBLEMS,
    ),
    "model_spurious_tool": (
        "the model called a tool where the recorded turn answered in text",
        _SEE_PROBLEMS,
    ),
    "model_other": ("the answer's stop reason or text failed the turn's checks", _SEE_PROBLEMS),
    "proxy_protocol": (
        "the answers broke the Anthropic message format (ccbench's fault, not the model's)",
        f"{_SEE_PROBLEMS}: please report it with the results file",
    ),
}


def diagnose(run: RunView) -> list[str]:
    turns = [turn for scenario in run.scenarios for turn in scenario.turns]
    failed = [t for t in turns if not t.passed and t.kind == "messages"]
    return (
        text_tool_call_lines(turns)
        + main_class_lines(failed)
        + cut_turn_lines(failed, run.conditions.get("max_output_tokens"))
        + digest_lines(error_digest(turn.error for turn in turns))
    )


def main_class_lines(failed: list[TurnView]) -> list[str]:
    """The most frequent failure class among the failed turns, said as what the model did. Turns whose tool
    call the server left as text are not counted again: text_tool_call_lines names their fix."""
    classes = Counter(turn.failure_class for turn in failed if turn.failure_class)
    if not classes:
        return []
    main, count = classes.most_common(1)[0]
    if main == "model_no_tool":
        count -= count_text_tool_calls(failed)[0]
    if main not in CLASS_LINES or not count:
        return []
    what, todo = CLASS_LINES[main]
    return [f"{count} of {len(failed)} failed turns: {what}:", f"      → {todo}"]


def cut_turn_lines(failed: list[TurnView], cap: object) -> list[str]:
    """Failed turns whose answer ended at max_tokens: the model was still writing.

    The results record no requested max_tokens, but a turn stopped there wrote as many tokens as it was allowed,
    so its output_tokens is its budget. The run's cap is named when a turn reached it (or no count says
    otherwise); --max-output-tokens is offered only for budgets above LONG_BUDGET, where lowering them changes
    something; a small budget (the smoke suite's) is the scenario's own and only says the model wrote text."""
    cut = [turn for turn in failed if turn.stop_reason == "max_tokens"]
    if not cut:
        return []
    largest = max((turn.output_tokens for turn in cut if turn.output_tokens), default=None)
    if isinstance(cap, int) and (largest is None or largest >= cap):
        hint = (
            f"the run's --max-output-tokens {cap:,} cut them before they were done: raise it (or drop it) "
            "when a model needs more room to reach its tool call"
        )
    elif largest is None or largest > LONG_BUDGET:
        hint = (
            "the model wrote until the request's max_tokens without finishing its answer (it rambles or "
            "repeats itself): check its chat template and sampling settings (temperature, repetition penalty)"
        )
        if largest is not None:
            hint += f"; --max-output-tokens below {largest:,} bounds the time such turns take"
    else:
        hint = (
            f"the turns' own max_tokens (or what the context left after the prompt) ended them, at most "
            f"{largest:,} tokens here: room for a tool call or a short answer, not for the text the model wrote; "
            "if its text runs on, check its chat template and sampling settings"
        )
    return [
        f"{len(cut)} of {len(failed)} failed turns stopped at max_tokens, still writing:",
        f"      → {hint}",
    ]
