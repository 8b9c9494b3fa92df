"""An assistant prefill: a request whose last message is the assistant's own start of the answer.

Anthropic's API answers it with the continuation only. OpenAI-format servers need to be told to continue the
message rather than start a new turn (vLLM and SGLang: `continue_final_message`), and llama.cpp's llama-server
answers with the prefill text itself followed by the continuation; `PrefillEcho` strips that echo, only for such
backends (`echoes_prefill`) (pure; no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass

CONTINUE_PARAMS = {"continue_final_message": True, "add_generation_prompt": False}
# Backend kinds (upstream probe) whose answer to a prefill starts with the prefill itself. vLLM and SGLang continue
# it without a repeat, and an unknown server is not assumed to repeat it: stripping a repeat that is not there
# eats the start of the real answer, where prefill and answer begin alike ("[" then "[1, 2]]").
ECHOING_KINDS = frozenset({"llamacpp"})


def echoes_prefill(kind: str) -> bool:
    """Whether a backend of this kind repeats the prefill (ResponseContext.prefill_echoed)."""
    return kind in ECHOING_KINDS


def prefill_text(messages: list[dict]) -> str:
    """The text of a final assistant message without tool calls (translated OpenAI messages), or ""."""
    last = messages[-1] if messages else None
    if not last or last.get("role") != "assistant" or last.get("tool_calls"):
        return ""
    content = last.get("content")
    return content if isinstance(content, str) else ""


@dataclass
class PrefillEcho:
    """Removes a repeat of the prefill from the start of the answer, however the answer is chunked; an answer
    that does not repeat it passes unchanged (what was held back while it still could is given back)."""

    prefill: str
    matched: int = 0
    done: bool = False

    def feed(self, text: str) -> str:
        if self.done:
            return text
        rest = self.prefill[self.matched :]
        if text.startswith(rest):
            self.done = True
            return text[len(rest) :]
        if rest.startswith(text):
            self.matched += len(text)
            return ""
        self.done = True
        return self.prefill[: self.matched] + text

    def flush(self) -> str:
        """At the end of the answer: a partial repeat was the answer itself after all."""
        if self.done:
            return ""
        self.done = True
        return self.prefill[: self.matched]


def strip_echo(prefill: str, text: str) -> str:
    """The non-streaming answer without a leading repeat of the prefill."""
    return text[len(prefill) :] if prefill and text.startswith(prefill) else text
