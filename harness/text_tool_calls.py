"""Tool calls a model wrote as text because the server did not parse them.

A model trained for tools emits its call in its own syntax (`<tool_call>{…}</tool_call>` for Hermes/Qwen,
`[TOOL_CALLS]` for Mistral, …); the server is meant to turn that into a structured `tool_calls` entry. When the
server is started without its tool parser (vLLM without `--enable-auto-tool-choice --tool-call-parser`,
llama-server without `--jinja`) the call arrives as plain text, Claude Code runs nothing, and the run shows
`model_no_tool`. Telling that apart from a model that did not try is the difference between "change the model"
and "add a server flag", so the scorer notes it on the turn and `ccbench run` sums it up. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Collection

PROBLEM_PREFIX = "tool call written as text"
SERVER_HINT = (
    "the server did not parse the model's tool calls: vLLM needs --enable-auto-tool-choice --tool-call-parser "
    "NAME (hermes for Qwen/Hermes, mistral, llama3_json, …), llama-server needs --jinja, and Ollama a model "
    "whose template supports tools"
)
# Opening markers of the tool-call syntaxes servers parse, in the model's own text.
MARKERS = (
    "<tool_call>",  # Hermes, Qwen 2.5/3, SmolLM, many fine-tunes
    "<|python_tag|>",  # Llama 3.1
    "[TOOL_CALLS]",  # Mistral
    "<function=",  # Llama 3.2 custom tools, Qwen3-Coder XML
    "<｜tool▁calls▁begin｜>",  # DeepSeek V3/R1
    "<|tool_calls_section_begin|>",  # Kimi K2
    "<|tool_call|>",  # Phi-4-mini, Granite
)
_JSON_CALL = re.compile(
    r'\{\s*"(?:name|function)"\s*:\s*"([^"\\]{1,200})"\s*,\s*"(?:arguments|parameters)"\s*:'
)


def text_tool_call(text: str, offered: Collection[str]) -> str | None:
    """What in `text` is a tool call the server left unparsed (a marker, or a bare JSON call naming an offered
    tool), or None. A JSON object naming a tool that was not offered is not counted: models quote JSON."""
    for marker in MARKERS:
        if marker in text:
            return marker
    for match in _JSON_CALL.finditer(text):
        if match.group(1) in offered:
            return f'{{"name": "{match.group(1)}", …}}'
    return None


def text_tool_call_problem(marker: str) -> str:
    return f"{PROBLEM_PREFIX} ({marker}): {SERVER_HINT}"


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
