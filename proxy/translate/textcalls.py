"""Tool calls a model wrote as text because the server did not parse them (pure).

A model trained for tools emits its call in its own syntax (`<tool_call>{…}</tool_call>` for Hermes/Qwen,
`[TOOL_CALLS]` for Mistral, …) and the server is meant to turn it into a structured `tool_calls` entry. A server
started without its tool parser (SGLang or vLLM without `--tool-call-parser`, llama-server without `--jinja`)
passes the call through as plain text: Claude Code runs nothing and the session stalls. The proxy names the
cause in its log and `ccbench run` in its report, because the fix is a server flag, not another model.
"""

from __future__ import annotations

import re
from collections.abc import Collection

VLLM_TOOL_FLAGS = (
    "--enable-auto-tool-choice --tool-call-parser NAME (hermes for Qwen/Hermes, mistral, llama3_json, …)"
)
SERVER_HINT = (
    f"the server did not parse the model's tool calls: vLLM needs {VLLM_TOOL_FLAGS}, SGLang --tool-call-parser "
    "NAME, llama-server --jinja, and Ollama a model whose template supports tools"
)
PROBLEM_PREFIX = "tool call written as text"
HEAD_CHARS = 256  # where the stream translator looks: calls come first or after a short preamble
# Opening markers of the tool-call syntaxes servers parse, as they appear in a model's own text.
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
    """The problem line, without model text (the proxy logs it at warning level)."""
    return f"{PROBLEM_PREFIX} ({marker}): {SERVER_HINT}"
