"""One log line per proxied request.

Operators need model, backend model, status, time to first token, duration and token counts at a glance;
headers and bodies are never logged here (they may hold secrets or private code).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from proxy.logsetup import sole_handler
from proxy.translate.outcome import LOWERED_CAP_PROBLEM
from proxy.translate.textcalls import PROBLEM_PREFIX as TEXT_TOOL_CALL

# Problems that are advice for whoever runs the backend or the proxy (a flag), logged once at warning level.
OPERATOR_ADVICE = (TEXT_TOOL_CALL, LOWERED_CAP_PROBLEM)


def _shortened(message: str) -> str:
    """An error message as the log line shows it: printable, at most MAX_REASON characters."""
    return _printable(message, MAX_REASON)


def _ms(value: float | None) -> str:
    """Milliseconds, or `-` (no unit) for a time that does not apply: no first token in an error or a non-stream."""
    return "-" if value is None else f"{value:.0f}ms"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _printable(value: object, limit: int | None = None) -> str:
    """Client-chosen text (a model name, the percent-decoded path) with line breaks and other control
    characters escaped, so that no client can write a line of its own into the log, and at most `limit`
    (MAX_FIELD) characters, so that no client fills the disk with a 30 MB model name on every request."""
    text = value if isinstance(value, str) else str(value)  # passthrough keeps any JSON value as the model
    limit = limit or MAX_FIELD
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if text.isprintable():  # nearly always: one C call
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


MAX_REASON = 160  # characters of an error message in the log line
MAX_FIELD = 200  # characters of a model name or path in the log line
USAGE_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_tokens", "cache_read_input_tokens"),
)


@dataclass
class RequestLog:
    """Facts about one request, filled in as it progresses and written once by `emit`."""

    request_id: str
    route: str
    requested_model: object = None  # str, except in passthrough, which forwards any JSON value
    backend_model: object = None
    stream: bool = False
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None  # why it failed, for the operator (the log line shows it shortened)
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None  # prompt tokens the backend served from its prompt cache
    method: str = "POST"
    problems: list[str] = field(default_factory=list)  # repaired tool arguments, skipped chunks, ...
    started: float = field(default_factory=time.perf_counter)
    emitted: bool = False

    def mark_first_token(self) -> None:
        """Record the time to the first content byte (only the first call counts)."""
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000.0

    def record_usage(self, usage: dict) -> None:
        """The token counts of an Anthropic `usage` object the backend's report was translated to."""
        for field_name, key in USAGE_FIELDS:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, field_name, value)

    @property
    def duration_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def line(self) -> str:
        """The log line: `METHOD /path model -> backend status ttft=…ms dur=…ms in=… out=…`."""
        models = ""
        if self.requested_model or self.backend_model:
            models = f" {_printable(self.requested_model or '-')} -> {_printable(self.backend_model or '-')}"
        error = f" {self.error_type}" if self.error_type else ""
        kind = " stream" if self.stream else ""
        problems = f" problems={len(self.problems)}" if self.problems else ""
        cached = f" cached={self.cache_read_tokens}" if self.cache_read_tokens else ""
        reason = f' reason="{_shortened(self.error_message)}"' if self.error_message else ""
        return (
            f"{self.request_id} {self.method} {_printable(self.route)}{models}{kind} {self.status}{error}"
            f" ttft={_ms(self.ttft_ms)} dur={_ms(self.duration_ms)}"
            f" in={_num(self.input_tokens)}{cached} out={_num(self.output_tokens)}{problems}{reason}"
        )

    def emit(self, logger: logging.Logger, advised: set[str] | None = None) -> None:
        """Write the line once (later calls do nothing): at warning level for 5xx and for a stream that started
        (200) and then ended with an `event: error` (the backend failed mid-answer: as much a failure as a 502),
        info otherwise. Advice for the operator among the problems is logged at warning level once per `advised`
        set (one per proxy)."""
        if self.emitted:
            return
        self.emitted = True
        failed_midstream = self.status < 300 and self.error_type is not None
        level = logging.WARNING if self.status >= 500 or failed_midstream or self.problems else logging.INFO
        if logger.isEnabledFor(level):  # the line is only built when it is written
            handler = sole_handler(logger, level)
            if handler is not None:  # the `ccbench proxy` process: the same line, without a LogRecord
                handler.emit_line(level, logger.name, self.line())
            else:
                logger.log(level, "%s", self.line())
        for problem in self.problems:  # may quote model output, so only at debug level
            logger.debug("%s problem: %s", self.request_id, problem)
            if advised is not None and problem.startswith(OPERATOR_ADVICE) and problem not in advised:
                # no model output in these; once: the fix is the operator's, not each request's
                advised.add(problem)
                logger.warning("%s %s (said once)", self.request_id, problem)
