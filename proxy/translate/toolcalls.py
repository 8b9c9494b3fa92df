"""The tool calls of one streamed message: which call a `tool_calls` fragment belongs to, the order calls start
in, and their Anthropic ids (pure; no I/O).

Servers disagree on how fragments name their call: by `index` (OpenAI), by an `id` that is repeated, reused
across calls (DeepSeek, GLM) or changed mid-call (Poolside), or by nothing at all. The rules are in
`ToolCallBuffer.starts_another`; ids are made unique within the message the same way as non-streamed.
"""

from __future__ import annotations

from proxy.translate.toolcall import ToolCallBuffer
from proxy.translate.tools import compact_json, message_tool_id


class ToolCalls:
    """Calls in arrival order; `calls[:started]` have started (or were dropped), the rest wait in order."""

    def __init__(self, history_ids: frozenset[str] = frozenset()) -> None:
        self.calls: list[ToolCallBuffer] = []
        self.started = 0
        self._by_index: dict[int | None, ToolCallBuffer] = {}
        self._ids: set[str] = set(history_ids)  # ids of the request's history and those given out here

    def add(self, fragment: object, problems: list[str]) -> None:
        """One `tool_calls[]` entry: its id, name and arguments go to the call it belongs to."""
        if not isinstance(fragment, dict):
            return
        index = fragment.get("index")
        if not isinstance(index, int):
            index = None
        call_id = fragment.get("id")
        if not (call_id and isinstance(call_id, str)):
            call_id = None
        function = fragment.get("function")
        if not isinstance(function, dict):
            function = {}
        name = function.get("name")
        if not (name and isinstance(name, str)):
            name = None
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = compact_json(arguments)
        call = self._by_index.get(index)
        if index is None and call is None and self.calls and not call_id:
            call = self.calls[-1]
        if call is None or (name is not None and call.starts_another(call_id, name, arguments)):
            call = ToolCallBuffer(index)
            self.calls.append(call)
            self._by_index[index] = call
        if call_id and call.backend_id is None and not call.started:
            call.backend_id = call_id
        if name is not None and call.openai_name is None:
            call.openai_name = name  # set once: servers that repeat the name must not double it
        if isinstance(arguments, str):
            call.append(arguments, problems)

    def mark_started(self, call: ToolCallBuffer) -> None:
        call.started = True
        self.started += 1  # calls start in the order they arrived: this one was the first waiting

    def assign_id(self, call: ToolCallBuffer, problems: list[str]) -> str:
        """The call's Anthropic id: the backend's (sanitized), made unique within the message, or a new one."""
        call.id = message_tool_id(call.backend_id, self._ids, problems)
        return call.id

    def has_tool_use(self) -> bool:
        return any(call.started and not call.dropped for call in self.calls)

    def unnamed(self) -> int:
        """Calls that never started: they never got a function name."""
        return sum(1 for call in self.calls if not call.started)
