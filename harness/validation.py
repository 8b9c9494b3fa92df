"""Is a response exactly what an Anthropic client expects? JSON Schemas plus the SSE event grammar.

Every check returns problem strings (empty = valid) instead of raising, because the scorer reports all
of them and a run never stops on a bad response. The SSE checker is a state machine over the event list
(frame level, per-event schema, ordering) that also accumulates the final Message the client would build.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from proxy.sse import SSEDecoder

SCHEMA_BASE = "https://ccbench.local/schemas/"
EVENT_TYPES = (
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
)
# Which delta types may appear inside which block type.
DELTA_FOR_BLOCK = {
    "text": {"text_delta", "citations_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
    "mcp_tool_use": {"input_json_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "compaction": {"compaction_delta"},
}
MAX_ERRORS_PER_INSTANCE = 5


@functools.cache
def load_schema(name: str) -> dict:
    """A schema shipped in harness/schemas (package data, so it works from a wheel too)."""
    text = resources.files("harness").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _registry() -> Registry:
    names = [p.name[: -len(".json")] for p in resources.files("harness").joinpath("schemas").iterdir()]
    pairs = [(SCHEMA_BASE + f"{n}.json", Resource.from_contents(load_schema(n))) for n in names if n]
    return Registry().with_resources(pairs)


@functools.cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name), registry=_registry())


def schema_problems(name: str, instance: object, where: str = "") -> list[str]:
    """Validate against schema `name`; each problem names the JSON path and the rule that failed."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    out = []
    for err in errors[:MAX_ERRORS_PER_INSTANCE]:
        path = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}{name}: {path}: {err.message[:200]}")
    return out


def _best(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf failures, the deepest sub-error: the branch that got furthest explains the mistake."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def schema_problems_at(name: str, pointer: str, instance: object, root: str) -> list[str]:
    """Validate against a part of schema `name` (e.g. "#/$defs/entries"); paths read like `root[3].expect`."""
    sub = Draft202012Validator({"$ref": f"{SCHEMA_BASE}{name}.json{pointer}"}, registry=_registry())
    out: list[str] = []
    for err in map(_best, sub.iter_errors(instance)):
        path = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        line = f"{path}: {err.message[:200]}"
        if line not in out:
            out.append(line)
    return out


def message_problems(message: object, where: str = "message: ") -> list[str]:
    """A final Message: the schema, a non-null stop_reason, every tool_use input a JSON object."""
    problems = schema_problems("message", message, where)
    if isinstance(message, dict) and not problems and message.get("stop_reason") is None:
        problems.append(f"{where}stop_reason is null in a final message")
    return problems


@dataclass
class ResponseCheck:
    """The verdict on one /v1/messages response, streaming or not."""

    problems: list[str] = field(default_factory=list)
    message: dict | None = None  # the Message (non-streaming) or the accumulated one (streaming)
    error: dict | None = None  # the `error` object of an error envelope or `event: error`
    ttft_ms: float | None = None
    latency_ms: float | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def output_tokens(self) -> int | None:
        usage = (self.message or {}).get("usage") or {}
        value = usage.get("output_tokens")
        return value if isinstance(value, int) else None


def _parse_json(body: bytes | str) -> tuple[object | None, str | None]:
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"body is not JSON: {exc}"


def check_json_response(status: int, body: bytes | str, latency_ms: float | None = None) -> ResponseCheck:
    """A non-streaming answer: 200 + a valid Message, or an error status + a valid error envelope."""
    check = ResponseCheck(latency_ms=latency_ms)
    data, problem = _parse_json(body)
    if problem:
        check.problems.append(f"HTTP {status}: {problem}")
        return check
    if status == 200:
        check.problems += message_problems(data)
        check.message = data if isinstance(data, dict) else None
        return check
    check.problems += schema_problems("error", data, f"HTTP {status} ")
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        check.error = data["error"]
    else:
        check.error = {"type": "api_error", "message": f"HTTP {status}"}
    return check


@dataclass(slots=True)
class TimedEvent:
    """One decoded SSE frame and when it arrived (seconds after the request was sent)."""

    event: str | None
    data: str
    t: float = 0.0


def decode_sse(body: bytes | str) -> list[TimedEvent]:
    """Split a whole SSE body into frames (no timing); for cassettes and tests."""
    decoder = SSEDecoder()
    raw = body.encode() if isinstance(body, str) else body
    frames = decoder.feed(raw) + decoder.flush()
    return [TimedEvent(f.event, f.data) for f in frames]


class _StreamGrammar:
    """The ordering rules of Anthropic SSE (reference/anthropic-wire.md section 4.3) plus accumulation."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.message: dict | None = None
        self.error: dict | None = None
        self.open_index: int | None = None
        self.open_type: str | None = None
        self.partial_json = ""
        self.signature_seen = False
        self.next_index = 0
        self.message_deltas = 0
        self.finished = False  # message_stop or error seen

    def problem(self, n: int, text: str) -> None:
        self.problems.append(f"event {n}: {text}")

    def feed(self, n: int, kind: str, data: dict) -> None:
        if self.finished:
            self.problem(n, f"{kind} after the end of the stream")
            return
        if kind == "error":
            self.error = data.get("error") if isinstance(data.get("error"), dict) else {}
            self.finished = True
            return
        if self.message is None:
            if kind != "message_start":
                self.problem(n, f"{kind} before message_start (message_start must come first)")
                return
            self.message = dict(data["message"])
            self.message["content"] = []
            self.message["usage"] = dict(self.message.get("usage") or {})
            return
        getattr(self, "on_" + kind)(n, data)

    def on_message_start(self, n: int, data: dict) -> None:
        self.problem(n, "a second message_start")

    def on_ping(self, n: int, data: dict) -> None:
        pass

    def on_content_block_start(self, n: int, data: dict) -> None:
        index = data["index"]
        if self.message_deltas:
            self.problem(n, "content_block_start after message_delta")
        if self.open_index is not None:
            self.problem(n, f"content_block_start({index}) while block {self.open_index} is still open")
        if index != self.next_index:
            self.problem(
                n, f"content_block_start index {index}, expected {self.next_index} (dense, in order)"
            )
        block = dict(data["content_block"])
        self.open_index, self.open_type = index, block.get("type")
        self.next_index = max(self.next_index, index + 1)
        self.partial_json, self.signature_seen = "", False
        self.message["content"].append(block)

    def on_content_block_delta(self, n: int, data: dict) -> None:
        index, delta = data["index"], data["delta"]
        if index != self.open_index:
            self.problem(n, f"content_block_delta for block {index}, but the open block is {self.open_index}")
            return
        dtype = delta["type"]
        if dtype not in DELTA_FOR_BLOCK.get(self.open_type or "", set()):
            self.problem(n, f"{dtype} inside a {self.open_type} block")
            return
        block = self.message["content"][-1]
        if self.open_type == "thinking" and self.signature_seen:
            self.problem(n, f"{dtype} after the thinking block's signature_delta (it must be last)")
        if dtype == "text_delta":
            block["text"] = block.get("text", "") + delta["text"]
        elif dtype == "input_json_delta":
            self.partial_json += delta["partial_json"]
        elif dtype == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta["thinking"]
        elif dtype == "signature_delta":
            block["signature"] = delta["signature"]
            self.signature_seen = True
        elif dtype == "citations_delta":
            block.setdefault("citations", []).append(delta["citation"])

    def on_content_block_stop(self, n: int, data: dict) -> None:
        index = data["index"]
        if index != self.open_index:
            self.problem(n, f"content_block_stop for block {index}, but the open block is {self.open_index}")
            return
        block = self.message["content"][-1]
        if self.open_type == "thinking" and not self.signature_seen:
            self.problem(n, f"thinking block {index} ended without a signature_delta")
        if self.open_type in ("tool_use", "server_tool_use", "mcp_tool_use") and self.partial_json.strip():
            try:
                block["input"] = json.loads(self.partial_json)
            except ValueError:
                self.problem(n, f"tool_use block {index}: input_json_delta fragments are not valid JSON")
            else:
                if not isinstance(block["input"], dict):
                    self.problem(n, f"tool_use block {index}: input is not a JSON object")
        self.open_index = self.open_type = None

    def on_message_delta(self, n: int, data: dict) -> None:
        self.message_deltas += 1
        if self.open_index is not None:
            self.problem(n, f"message_delta while block {self.open_index} is still open")
        if self.message_deltas > 1:
            self.problem(n, "more than one message_delta (clients overwrite stop_reason)")
        stop_reason = data["delta"].get("stop_reason")
        if stop_reason is None:
            self.problem(n, "message_delta without a stop_reason")
        self.message["stop_reason"] = stop_reason
        self.message["stop_sequence"] = data["delta"].get("stop_sequence")
        self.message["usage"].update({k: v for k, v in data["usage"].items() if v is not None})

    def on_message_stop(self, n: int, data: dict) -> None:
        if not self.message_deltas:
            self.problem(n, "message_stop without a message_delta")
        if self.open_index is not None:
            self.problem(n, f"message_stop while block {self.open_index} is still open")
        self.finished = True


def _frame(n: int, frame: TimedEvent) -> tuple[dict | None, list[str]]:
    """Frame level: an `event:` name, one JSON object `data:` whose type equals the name, no [DONE]."""
    if frame.data.strip() == "[DONE]":
        return None, [f"event {n}: data: [DONE] is not part of the Anthropic protocol"]
    if not frame.event:
        return None, [f"event {n}: no `event:` line (SDK clients drop such frames)"]
    try:
        data = json.loads(frame.data)
    except ValueError:
        return None, [f"event {n} ({frame.event}): data is not valid JSON"]
    if not isinstance(data, dict):
        return None, [f"event {n} ({frame.event}): data is not a JSON object"]
    if data.get("type") != frame.event:
        return None, [f"event {n}: event name {frame.event!r} but data.type {data.get('type')!r}"]
    return data, []


def check_stream(frames: list[TimedEvent], status: int = 200) -> ResponseCheck:
    """A streaming answer: frames, per-event schemas, grammar, then the accumulated message itself."""
    check = ResponseCheck()
    grammar = _StreamGrammar()
    for n, frame in enumerate(frames):
        data, problems = _frame(n, frame)
        check.problems += problems
        if data is None:
            continue
        kind = frame.event
        if kind not in EVENT_TYPES:
            continue  # new event types may appear at any time: tolerated, as the SDKs do
        schema_errors = schema_problems(f"event_{kind}", data, f"event {n} ")
        if schema_errors:
            check.problems += schema_errors
            continue
        if kind == "content_block_delta" and check.ttft_ms is None:
            check.ttft_ms = frame.t * 1000.0
        if kind == "message_stop":
            check.latency_ms = frame.t * 1000.0
        grammar.feed(n, kind, data)
    check.problems += grammar.problems
    check.error = grammar.error
    if not frames:
        check.problems.append("empty stream")
    elif not grammar.finished:
        check.problems.append("stream ended without message_stop")
    if grammar.message is not None and grammar.error is None and grammar.finished:
        check.problems += message_problems(grammar.message, "accumulated message: ")
    check.message = grammar.message
    return check


def check_count_tokens(status: int, body: bytes | str) -> list[str]:
    """count_tokens must answer 200 {"input_tokens": positive int}."""
    data, problem = _parse_json(body)
    if problem:
        return [f"count_tokens HTTP {status}: {problem}"]
    if status != 200:
        return [f"count_tokens answered HTTP {status}: {json.dumps(data)[:200]}"]
    problems = schema_problems("count_tokens", data, "count_tokens ")
    if not problems and data["input_tokens"] <= 0:
        problems.append("count_tokens: input_tokens is not positive")
    return problems
