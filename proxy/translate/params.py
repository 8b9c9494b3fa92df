"""The OpenAI request's top-level parameters from an Anthropic request's (pure; no I/O): sampling, stop strings,
the user id, tool choice, thinking and effort, and structured output, as the backend's profile allows them.

Each function returns the members to add and appends to `dropped` what the backend cannot take.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.translate.jsonvalues import object_member
from proxy.translate.tools import openai_tool_name

MAX_OPENAI_STOP = 4  # OpenAI's limit, kept for servers not known to take more
MAX_USER_CHARS = 256
EFFORT_LEVELS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


@dataclass
class BackendProfile:
    """What the backend understands; built from Config + start-up probe."""

    thinking_style: str = "chat_template_kwargs"  # "chat_template_kwargs" | "reasoning_effort" | "none"
    send_reasoning_back: bool = False  # history thinking -> assistant "reasoning_content"
    max_output_tokens: int | None = None  # hard cap from config
    # OpenAI's own API takes at most 4 stop strings; vLLM, llama.cpp, Ollama and LM Studio take any number
    max_stop_sequences: int | None = None


def thinking_params(body: dict, profile: BackendProfile, dropped: list[str]) -> dict:
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else None
    output_config = object_member(body, "output_config")
    requested_effort = output_config.get("effort")
    effort = (
        EFFORT_LEVELS.get(requested_effort) if isinstance(requested_effort, str) else None
    )  # [] is no key
    if thinking is None and effort is None:
        return {}
    kind = thinking.get("type") if thinking else None
    if profile.thinking_style == "none":
        dropped.append("thinking")
        return {}
    if profile.thinking_style == "reasoning_effort":
        if kind == "disabled":
            return {}
        budget_tokens = thinking.get("budget_tokens") if thinking else None
        if effort is None and kind == "enabled" and isinstance(budget_tokens, int):
            effort = "low" if budget_tokens < 4096 else "medium" if budget_tokens < 16384 else "high"
        return {"reasoning_effort": effort} if effort else {}
    params: dict = {}
    if kind in ("enabled", "adaptive", "disabled"):
        params["chat_template_kwargs"] = {"enable_thinking": kind != "disabled"}
    if effort and kind != "disabled":
        params["reasoning_effort"] = effort
    return params


def tool_choice_params(choice: dict | None, tool_names: dict[str, str], dropped: list[str]) -> dict:
    if choice is None:
        return {}
    kind = choice["type"]
    params: dict = {}
    if kind == "auto":
        params["tool_choice"] = "auto"
    elif kind == "any":
        params["tool_choice"] = "required"
    elif kind == "none":
        params["tool_choice"] = "none"
    elif openai_tool_name(choice["name"]) in tool_names:
        params["tool_choice"] = {"type": "function", "function": {"name": openai_tool_name(choice["name"])}}
    else:
        dropped.append("tool_choice:unknown_tool")
        params["tool_choice"] = "required"
    if choice.get("disable_parallel_tool_use") is True:
        params["parallel_tool_calls"] = False
    return params


def requested_stop_sequences(body: dict) -> list[str]:
    stops = body.get("stop_sequences")
    return [s for s in stops if isinstance(s, str) and s] if isinstance(stops, list) else []


def sampling_params(body: dict, profile: BackendProfile, dropped: list[str]) -> dict:
    params: dict = {}
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int):
        cap = profile.max_output_tokens
        params["max_tokens"] = max(1, min(max_tokens, cap) if cap else max_tokens)
    for key in ("temperature", "top_p", "top_k"):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            params[key] = value
    stops = requested_stop_sequences(body)
    if stops:
        limit = profile.max_stop_sequences
        if limit is not None and len(stops) > limit:
            dropped.append(f"stop_sequences beyond {limit}")
            stops = stops[:limit]
        params["stop"] = stops
    metadata = object_member(body, "metadata")
    if isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        params["user"] = metadata["user_id"][:MAX_USER_CHARS]
    return params


def response_format(body: dict) -> dict:
    output_config = object_member(body, "output_config")
    fmt = output_config.get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": fmt["schema"]},
            }
        }
    return {}
