"""Logging for the `ccbench proxy` process: one line per request, at a cost that does not show in its throughput.

Each request writes one access-log line. Through a plain StreamHandler that is a formatted timestamp and one
write() system call per request, which measured about a twentieth of the proxy's CPU per request (bench/). Here
lines below WARNING are written in batches, at most `BATCH_DELAY` seconds after they were logged, by one
background thread (one write per batch); warnings and errors are written at once, together with whatever is
pending, so their order is kept. The timestamp is formatted once per second.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TextIO

from proxy.errors import client_fault

BATCH_DELAY = 0.2  # seconds a request line may wait before it is written
MAX_PENDING = 512  # lines; a burst beyond this is written at once
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecondCachedFormatter(logging.Formatter):
    """`logging.Formatter` with the default `2026-11-25 16:00:58,647` timestamp, formatted once per second."""

    def __init__(self, fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging API)
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.timestamp(record.created, record.msecs)

    def timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._stamp},{int(msecs):03d}"

    def line(self, levelno: int, name: str, message: str, created: float) -> str:
        """What `format` gives for a record with these fields (FORMAT only), without building the record."""
        msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord computes it
        return f"{self.timestamp(created, msecs)} {logging.getLevelName(levelno)} {name}: {message}"


class BatchingStreamHandler(logging.StreamHandler):
    """A StreamHandler that writes lines below WARNING in batches (see the module docstring)."""

    def __init__(self, stream: TextIO | None = None, delay: float = BATCH_DELAY) -> None:
        super().__init__(stream)
        self.delay = delay
        self._pending: list[str] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # a forked worker must neither inherit the parent's pending lines nor wait for its (absent) thread
        os.register_at_fork(before=self.flush, after_in_child=self._forget_parent_state)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._enqueue(line, record.levelno)

    def emit_line(self, levelno: int, name: str, message: str) -> None:
        """What logging a `%s` message at `levelno` on logger `name` writes, without the LogRecord: for the
        request log, when this handler is where its records would go anyway (see `sole_handler`)."""
        formatter = self.formatter
        assert isinstance(formatter, SecondCachedFormatter)
        self._enqueue(formatter.line(levelno, name, message, time.time()) + self.terminator, levelno)

    def _enqueue(self, line: str, levelno: int) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            if levelno >= logging.WARNING or len(self._pending) >= MAX_PENDING:
                self._write_pending()
                return
            if len(self._pending) > 1:  # the flusher was woken by the first line of this batch
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._flush_loop, name="ccbench-log", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def _write_pending(self) -> None:
        """Called with the lock held."""
        if not self._pending:  # every write below is flushed at once: nothing else can be waiting
            return
        data = "".join(self._pending)
        self._pending.clear()
        try:
            self.stream.write(data)
            super().flush()
        except Exception:  # e.g. a closed pipe or file: report it the way StreamHandler does, never raise
            self.handleError(logging.makeLogRecord({"msg": data, "levelno": logging.ERROR}))

    def _flush_loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.delay)
            self._wake.clear()
            self.flush()

    def _forget_parent_state(self) -> None:
        self._pending = []
        self._wake = threading.Event()
        self._thread = None


def sole_handler(logger: logging.Logger, levelno: int) -> BatchingStreamHandler | None:
    """The handler a record of `logger` at `levelno` reaches when it is the only one, with no filter on the way
    and the standard format (the `ccbench proxy` set-up); None otherwise, e.g. under pytest's caplog or an
    application's own logging, which then get their LogRecords as usual."""
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        if current.handlers:
            if found is not None or len(current.handlers) != 1:
                return None
            found = current.handlers[0]
        if not current.propagate:
            break
        current = current.parent  # type: ignore[assignment]
    if type(found) is not BatchingStreamHandler or found.filters or levelno < found.level:
        return None
    formatter = found.formatter
    if type(formatter) is not SecondCachedFormatter or formatter._fmt != FORMAT:
        return None
    return found


class ClientFaultFilter(logging.Filter):
    """aiohttp logs a request it cannot read (a malformed request line, a header over its size limit, a bad chunk
    size, a body that does not decompress) at ERROR with a traceback, although the fault is the client's and the
    client has its 400 already. This makes such a record one WARNING line that says what was wrong; a record of
    any other exception keeps its level and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        reason = client_fault(record.exc_info[1] if record.exc_info else None)
        if reason is not None:
            record.msg = "a client sent a malformed request (answered 400, connection closed): %s"
            record.args = (" ".join(reason.split()),)
            if record.levelno > logging.WARNING:  # never raised: aiohttp logs some of these at DEBUG already
                record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_faults() -> None:
    """Install `ClientFaultFilter` on aiohttp's server logger (once, however often this is called)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientFaultFilter) for f in server_log.filters):
        server_log.addFilter(ClientFaultFilter())


def configure_logging(level: str, stream: TextIO | None = None) -> None:
    """The proxy process's logging: `level` for everything, one batching handler on stderr, aiohttp's access
    log off (ours replaces it), clients' malformed HTTP in one line (`ClientFaultFilter`). LogRecords skip the caller, thread and process lookups nothing here prints
    (`_srcfile = None` is the switch the logging module documents for the caller lookup)."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = BatchingStreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(SecondCachedFormatter())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    quiet_client_faults()
