"""Split `<think>…</think>` reasoning out of streamed content (llama.cpp `--reasoning-format none`).

Only a tag at the very start of the content counts, as in the non-streaming path. Tags split across
chunks are handled by holding back any tail that could still become `</think>`.
"""

from __future__ import annotations

from proxy.translate.outcome import THINK_CLOSE, THINK_OPEN


def _partial_tag_length(text: str, tag: str) -> int:
    """Length of the longest tail of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ThinkTagSplitter:
    """feed(content) -> (thinking, text); flush() at the end of the stream."""

    def __init__(self) -> None:
        self._state = "detect"  # "detect" -> "inside" -> "off", or "detect" -> "off"
        self._buffer = ""
        self._emitted_thinking = False

    @property
    def inside(self) -> bool:
        return self._state == "inside"

    def feed(self, content: str) -> tuple[str, str]:
        if self._state == "off":
            return "", content
        self._buffer += content
        if self._state == "detect":
            head = self._buffer.lstrip()
            if head.startswith(THINK_OPEN):
                self._state, self._buffer = "inside", head[len(THINK_OPEN) :]
            elif THINK_OPEN.startswith(head):
                return "", ""  # still undecided ("", whitespace or "<thi")
            else:
                self._state, text, self._buffer = "off", self._buffer, ""
                return "", text
        return self._inside()

    def _inside(self) -> tuple[str, str]:
        thinking, closed, rest = self._buffer.partition(THINK_CLOSE)
        if closed:
            self._state, self._buffer = "off", ""
            return self._clean(thinking.rstrip()), rest
        keep = _partial_tag_length(self._buffer, THINK_CLOSE)
        ready = self._buffer[: len(self._buffer) - keep]
        ready = ready[: len(ready.rstrip())]  # trailing space may turn out to precede </think>
        self._buffer = self._buffer[len(ready) :]
        return self._clean(ready), ""

    def _clean(self, thinking: str) -> str:
        if not self._emitted_thinking:
            thinking = thinking.lstrip()
        if thinking:
            self._emitted_thinking = True
        return thinking

    def flush(self) -> tuple[str, str]:
        """End of content: an unclosed <think> is all reasoning; an undecided prefix is plain text."""
        state, buffer = self._state, self._buffer
        self._state, self._buffer = "off", ""
        if state == "inside":
            return self._clean(buffer.rstrip()), ""
        return "", buffer if state == "detect" else ""
