"""OpenAI chat-completion chunks -> Anthropic stream events: one explicit state machine (pure; no I/O).

State: at most one open content block (thinking, text or one tool call); tool calls that arrive while
another block is open wait in order and start when it closes, and text or reasoning that arrives while a
call's arguments are still incomplete waits until they are (closing the call early would run a cut command).
Every emitted event goes through `EventChecker`, so a grammar violation raises instead of reaching Claude Code.
"""

from __future__ import annotations

from proxy.translate.backend_errors import error_in_body
from proxy.translate.invariants import EventChecker
from proxy.translate.outcome import (
    content_text,
    cut_by_proxy,
    estimate_output_tokens,
    fabricate_signature,
    matched_stop_sequence,
    stop_reason_for,
    usage_from_openai,
)
from proxy.translate.prefill import PrefillEcho
from proxy.translate.response import ResponseContext
from proxy.translate.textcalls import HEAD_CHARS, text_tool_call, text_tool_call_problem
from proxy.translate.thinktags import ThinkTagSplitter
from proxy.translate.toolcall import ToolCallBuffer
from proxy.translate.toolcalls import ToolCalls
from proxy.translate.tools import parse_tool_arguments, unusable_call_text

__all__ = ["StreamTranslator"]


class StreamTranslator:
    """Feed parsed OpenAI chunks, get Anthropic events; see docs/INTERFACES.md for the call order."""

    def __init__(self, ctx: ResponseContext) -> None:
        self.ctx = ctx
        self.done = False
        self.stop_reason: str | None = None
        self.usage: dict = {"input_tokens": ctx.input_tokens, "output_tokens": 0}
        self.problems: list[str] = []
        self.output_text_chars = 0
        self._checker = EventChecker()
        self._started = False
        self._open: str | ToolCallBuffer | None = None  # "thinking" | "text" | a tool call
        self._index = -1
        self._thinking_text: list[str] = []
        self._tools = ToolCalls(ctx.history_tool_ids)
        self._finish_reason: str | None = None
        self._stop_candidates: list[object] = []
        self._last_usage: dict | None = None
        self._text_tail = ""
        self._text_head: list[str] = []  # the first HEAD_CHARS or so of text, to spot a call written as text
        self._longest_stop = max((len(s) for s in ctx.stop_sequences), default=0)
        self._pending_space = ""
        self._drop_leading_space = False
        self._think = ThinkTagSplitter()
        self._finishing = False
        self._refused = False
        self._echo = PrefillEcho(ctx.prefill) if ctx.prefill and ctx.prefill_echoed else None
        self._held: list[tuple[bool, str]] = []  # (is_reasoning, text) that arrived inside an unfinished call
        self._saw_reasoning = False  # a reasoning field arrived: <think> text in content is a duplicate

    # --- public API ---------------------------------------------------------------------------------

    def start(self) -> list[dict]:
        if self._started:
            return []
        self._started = True
        message: dict = {
            "id": self.ctx.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.ctx.requested_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": {
                "input_tokens": self.ctx.input_tokens,
                "output_tokens": 1,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        }
        return self._emit([{"type": "message_start", "message": message}, {"type": "ping"}])

    def ping(self) -> list[dict]:
        return self._emit([{"type": "ping"}]) if self._started and not self.done else []

    def feed(self, chunk: object) -> list[dict]:
        """One parsed OpenAI chunk (or a mid-stream `{"error": …}` object) -> events."""
        if self.done:
            return []
        if not self._started:  # the relay normally calls start() itself
            return self.start() + self.feed(chunk)
        if not isinstance(chunk, dict):
            self.problems.append("backend sent a chunk that is not a JSON object; ignored")
            return []
        if "error" in chunk and not chunk.get("choices"):
            return self._fail_from_backend(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._last_usage = usage
        if "stopping_word" in chunk or "timings" in chunk:  # llama.cpp's native fields
            self._note_stopping_words(chunk)
        choices = chunk.get("choices")
        if not (choices and isinstance(choices, list)):
            return []
        if len(choices) == 1:  # the usual case: no list to merge into
            choice = choices[0]
            if not (isinstance(choice, dict) and choice.get("index", 0) in (0, None)):
                return []
            events = self._feed_choice(choice)
        else:
            events = []
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
                    events += self._feed_choice(choice)
        check = self._checker.check  # _emit, inlined: this runs for every chunk
        for event in events:
            check(event)
        return events

    @property
    def finish_reason(self) -> str | None:
        """The backend's finish_reason, once a chunk carried one (a stream cut before it is incomplete)."""
        return self._finish_reason

    def finish(self) -> list[dict]:
        """Upstream ended ([DONE] or EOF): close what is open, then message_delta and message_stop."""
        if self.done:
            return []
        opening = self.start()
        events: list[dict] = []
        if self._echo is not None and not self._echo.done:  # a partial repeat was the answer itself
            thinking, text = self._think.feed(self._echo.flush())
            events += self._reasoning("" if self._saw_reasoning else thinking) + self._text(text)
        thinking, text = self._think.flush()
        events += self._reasoning("" if self._saw_reasoning else thinking) + self._text(text)
        self._finishing = True
        events += self._pump()
        while self._open is not None or self._held:
            events += self._close_open() + self._release_held() + self._pump()
        for _ in range(self._tools.unnamed()):
            self.problems.append("backend sent a tool call without a function name; dropped")
        has_tool_use = self._tools.has_tool_use()
        if not has_tool_use and self.ctx.tool_names and self._text_head:
            marker = text_tool_call("".join(self._text_head), self.ctx.tool_names)
            if marker:
                self.problems.append(text_tool_call_problem(marker))
        stop_sequence = None
        if self._finish_reason in ("stop", None) and not has_tool_use:
            stop_sequence = matched_stop_sequence(
                self._stop_candidates, self._text_tail, self.ctx.stop_sequences
            )
        finish = "content_filter" if self._refused else self._finish_reason
        self.stop_reason = stop_reason_for(finish, has_tool_use, stop_sequence)
        self.problems += cut_by_proxy(self.stop_reason, self.ctx.lowered_max_tokens)
        fallback_output = estimate_output_tokens(self.output_text_chars)
        self.usage = usage_from_openai(self._last_usage, self.ctx.input_tokens, fallback_output).as_dict()
        delta = {
            "stop_reason": self.stop_reason,
            "stop_sequence": stop_sequence if self.stop_reason == "stop_sequence" else None,
        }
        events += [
            {"type": "message_delta", "delta": delta, "usage": dict(self.usage)},
            {"type": "message_stop"},
        ]
        self.done = True
        return opening + self._emit(events)

    @property
    def backend_reported_usage(self) -> bool:
        """Whether `usage` holds the backend's counts (else message_start's estimate, or nothing)."""
        return self._last_usage is not None and self.done

    def fail(self, error_type: str, message: str) -> list[dict]:
        """A terminal `error` event; nothing is closed (Claude Code discards the partial message)."""
        if self.done:
            return []
        self.done = True
        fallback_output = estimate_output_tokens(self.output_text_chars)
        self.usage = usage_from_openai(self._last_usage, self.ctx.input_tokens, fallback_output).as_dict()
        return self._emit([{"type": "error", "error": {"type": error_type, "message": message}}])

    # --- chunk handling ----------------------------------------------------------------------------------

    def _note_stopping_words(self, chunk: dict) -> None:
        timings = chunk.get("timings")
        for word in (
            chunk.get("stopping_word"),
            timings.get("stopping_word") if isinstance(timings, dict) else None,
        ):
            if word and isinstance(word, str):
                self._stop_candidates.append(word)

    def _fail_from_backend(self, chunk: dict) -> list[dict]:
        mapped = error_in_body(chunk)
        self.problems.append(f"backend error mid-stream: {mapped.message}")
        return self.fail(mapped.error_type, mapped.message)

    def _feed_choice(self, choice: dict) -> list[dict]:
        """One choice's delta; runs for every chunk, so each field is looked up once."""
        delta = choice.get("delta")
        events: list[dict] = []
        if delta and isinstance(delta, dict):
            reasoning = delta.get("reasoning_content")
            if not (reasoning and isinstance(reasoning, str)):
                reasoning = delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                self._saw_reasoning = True
                events += self._reasoning(reasoning)
            refusal = delta.get("refusal")
            if refusal and isinstance(refusal, str):  # OpenAI's refusal channel
                self._refused = True
                events += self._text(refusal)
            content = delta.get("content")
            if content and not isinstance(content, str):
                content = content_text(content)  # a list of parts, as some servers send
            if content and self._echo is not None:
                content = self._echo.feed(content)
            if content:
                thinking, text = self._think.feed(content)
                if thinking and not self._saw_reasoning:  # llama.cpp deepseek-legacy sends both: shown once
                    events += self._reasoning(thinking)
                if text:
                    events += self._text(text)
            calls = delta.get("tool_calls")
            if not isinstance(calls, list) and isinstance(delta.get("function_call"), dict):
                calls = [{"index": 0, "function": delta["function_call"]}]  # legacy single function_call
            if calls and isinstance(calls, list):
                for call in calls:  # pumped one by one: a fragment's call may depend on the one before
                    self._tools.add(call, self.problems)
                    events += self._pump()
        finish_reason = choice.get("finish_reason")
        if finish_reason and isinstance(finish_reason, str):
            self._finish_reason = finish_reason
            self._stop_candidates += [choice.get("stop_reason"), choice.get("stopping_word")]
        return events

    def _reasoning(self, text: str) -> list[dict]:
        if not text:
            return []
        events: list[dict] = []
        if self._open != "thinking":
            if self._inside_call():
                self._held.append((True, text))
                return []
            events += self._close_open()
            events += self._start_block({"type": "thinking", "thinking": "", "signature": ""}, "thinking")
            self._thinking_text = []
        self._thinking_text.append(text)
        self._drop_leading_space = True  # the answer after reasoning starts at its first non-space
        self.output_text_chars += len(text)
        return events + [self._delta({"type": "thinking_delta", "thinking": text})]

    def _text(self, text: str) -> list[dict]:
        if not text:
            return []
        events: list[dict] = []
        if self._open != "text":
            if self._inside_call():
                self._held.append((False, text))
                return []
            if not text.strip():  # whitespace alone does not open a block (it may only separate others)
                self._pending_space += text
                return []
            text = ("" if self._drop_leading_space else self._pending_space) + text
            if self._drop_leading_space:
                text = text.lstrip()
            self._pending_space, self._drop_leading_space = "", False
            events += self._close_open()
            events += self._start_block({"type": "text", "text": ""}, "text")
        longest = self._longest_stop
        self._text_tail = (self._text_tail + text)[-longest:] if longest else ""
        if self.output_text_chars < HEAD_CHARS:
            self._text_head.append(text)
        self.output_text_chars += len(text)
        return events + [self._delta({"type": "text_delta", "text": text})]

    # --- blocks ------------------------------------------------------------------------------------------

    def _emit(self, events: list[dict]) -> list[dict]:
        for event in events:
            self._checker.check(event)
        return events

    def _start_block(self, content_block: dict, kind: str | ToolCallBuffer) -> list[dict]:
        self._index += 1
        self._open = kind
        return [{"type": "content_block_start", "index": self._index, "content_block": content_block}]

    def _delta(self, delta: dict) -> dict:
        return {"type": "content_block_delta", "index": self._index, "delta": delta}

    def _close_open(self) -> list[dict]:
        open_block = self._open
        if open_block is None:
            return []
        events: list[dict] = []
        if open_block == "thinking":
            signature = fabricate_signature("".join(self._thinking_text))
            events.append(self._delta({"type": "signature_delta", "signature": signature}))
        elif isinstance(open_block, ToolCallBuffer):
            schema = self.ctx.tool_schemas.get(open_block.name or "")
            events += self._json_delta(open_block.finish(schema, self.problems))
        self._open = None
        return events + [{"type": "content_block_stop", "index": self._index}]

    def _inside_call(self) -> bool:
        """A call is open and its arguments are unfinished: text now must wait (see _held)."""
        call = self._open
        return isinstance(call, ToolCallBuffer) and not call.checker.complete and not self._finishing

    def _release_held(self) -> list[dict]:
        """The text and reasoning that arrived inside a call, in their order, once that call has closed."""
        if not self._held:
            return []
        held, self._held = self._held, []
        events: list[dict] = []
        for is_reasoning, text in held:
            events += self._reasoning(text) if is_reasoning else self._text(text)
        return events

    def _ready(self, call: ToolCallBuffer) -> bool:
        """A named call starts once its arguments open with `{`; others wait for the end to be judged whole."""
        return call.openai_name is not None and bool(call.opening or self._finishing)

    def _pump(self) -> list[dict]:
        """Forward the open call's new arguments; once they are complete, release held text, then start the
        next waiting call when that is allowed."""
        events: list[dict] = []
        tools = self._tools
        while True:
            waiting = tools.calls[tools.started] if tools.started < len(tools.calls) else None
            if isinstance(self._open, ToolCallBuffer):
                events += self._forward(self._open)
                if not self._open.checker.complete:
                    return events
                if self._held:
                    events += self._close_open() + self._release_held()
                    continue
                if waiting is None or not self._ready(waiting):
                    return events
            elif waiting is None or not self._ready(waiting):
                return events
            events += self._close_open()
            events += self._start_call(waiting)

    def _start_call(self, call: ToolCallBuffer) -> list[dict]:
        self._tools.mark_started(call)
        call.name = self.ctx.tool_names.get(call.openai_name or "", call.openai_name)
        if call.opening is False:  # not a JSON object from its first character: judged whole, as non-streamed
            parsed = parse_tool_arguments(
                call.raw, call.name or "", self.ctx.tool_schemas.get(call.name or "")
            )
            if parsed.input is None:
                return self._drop_call(call, parsed.problem)
        block: dict = {
            "type": "tool_use",
            "id": self._tools.assign_id(call, self.problems),
            "name": call.name,
            "input": {},
        }
        return self._start_block(block, call) + self._forward(call)

    def _drop_call(self, call: ToolCallBuffer, problem: str | None) -> list[dict]:
        """A call with unusable arguments becomes a text block saying so (never a tool_use with {})."""
        call.dropped = call.closed = True
        if problem:
            self.problems.append(problem)
        text = unusable_call_text(call.name or "", call.raw)
        self.output_text_chars += len(text)
        events = self._start_block({"type": "text", "text": ""}, "text")
        return events + [self._delta({"type": "text_delta", "text": text})]

    def _forward(self, call: ToolCallBuffer) -> list[dict]:
        return self._json_delta(call.take())

    def _json_delta(self, text: str) -> list[dict]:
        if not text:
            return []
        self.output_text_chars += len(text)
        return [self._delta({"type": "input_json_delta", "partial_json": text})]
