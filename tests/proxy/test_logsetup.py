"""The proxy process's log handler: request lines batched but never lost or reordered, warnings at once,
forked workers write only their own lines, and timestamps exactly as logging's default formatter writes them."""

from __future__ import annotations

import io
import logging
import os
import re
import time

import pytest

from proxy.logsetup import FORMAT, BatchingStreamHandler, SecondCachedFormatter, sole_handler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return logger


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_info_lines_arrive_in_order_within_the_delay_in_few_writes() -> None:
    stream = CountingStream()
    logger = _logger(BatchingStreamHandler(stream, delay=0.05), "test.logsetup.batch")
    for n in range(200):
        logger.info("request %d", n)
    assert stream.getvalue() == ""  # nothing written synchronously: that is the point
    assert _wait_for(lambda: stream.getvalue().count("\n") == 200)
    assert stream.getvalue().splitlines() == [f"INFO request {n}" for n in range(200)]
    assert stream.writes <= 3  # one write per batch, not per line


def test_a_warning_is_written_at_once_after_the_lines_before_it() -> None:
    stream = CountingStream()
    logger = _logger(BatchingStreamHandler(stream, delay=30.0), "test.logsetup.warning")
    logger.info("first")
    logger.warning("careful")
    assert stream.getvalue().splitlines() == ["INFO first", "WARNING careful"]
    logger.info("later")
    logging.getLogger("test.logsetup.warning").handlers[0].flush()  # what logging.shutdown() does at exit
    assert stream.getvalue().splitlines()[-1] == "INFO later"


def test_a_closed_stream_never_raises_into_the_caller_nor_stops_the_flusher(monkeypatch) -> None:
    """stderr gone (a closed pipe): a warning logged from a request handler must not raise there (that would
    turn a log call into a failed request), and the batching thread must survive to write again later."""
    reported: list[logging.LogRecord] = []
    stream = CountingStream()
    handler = BatchingStreamHandler(stream, delay=0.01)
    monkeypatch.setattr(handler, "handleError", reported.append)
    logger = _logger(handler, "test.logsetup.closed")
    logger.info("batched")
    assert _wait_for(lambda: "batched" in stream.getvalue())
    stream.close()
    logger.info("lost in the background")
    logger.warning("lost at once")  # raised ValueError here before
    lost = lambda: "".join(record.msg for record in reported)  # noqa: E731
    assert _wait_for(lambda: "lost in the background" in lost() and "lost at once" in lost())
    assert lost().index("lost in the background") < lost().index("lost at once")
    assert handler._thread is not None and handler._thread.is_alive()


def test_a_burst_beyond_the_pending_limit_is_written_without_waiting() -> None:
    stream = CountingStream()
    logger = _logger(BatchingStreamHandler(stream, delay=30.0), "test.logsetup.burst")
    for n in range(600):
        logger.info("line %d", n)
    assert stream.getvalue().count("\n") >= 512


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_writes_only_its_own_lines(tmp_path) -> None:
    path = tmp_path / "log.txt"
    with path.open("w") as stream:
        handler = BatchingStreamHandler(stream, delay=30.0)
        logger = _logger(handler, "test.logsetup.fork")
        logger.info("parent before fork")
        pid = os.fork()
        if pid == 0:  # the worker: its line is written by the exit path that proxy.app.run uses
            logger.info("child")
            handler.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        logger.info("parent after fork")
        handler.flush()
    lines = path.read_text().splitlines()
    assert sorted(lines) == ["INFO child", "INFO parent after fork", "INFO parent before fork"]


@pytest.mark.parametrize("created", [1764086458.0, 1764086458.047, 1764086458.999, 1764086459.5])
def test_timestamps_match_the_default_formatter(created: float) -> None:
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "name": "n"})
    record.created, record.msecs = created, (created - int(created)) * 1000
    cached = SecondCachedFormatter()
    cached.format(record)  # warm the per-second cache with the same second
    assert cached.format(record) == logging.Formatter(FORMAT).format(record)


def _proxy_like_hierarchy(name: str, stream: io.StringIO) -> tuple[logging.Logger, BatchingStreamHandler]:
    """What `configure_logging` sets up, on a private parent logger instead of the root."""
    parent = logging.getLogger(name)
    parent.handlers[:] = []
    parent.filters[:] = []
    parent.propagate = False
    parent.setLevel(logging.INFO)
    handler = BatchingStreamHandler(stream, delay=30.0)
    handler.setFormatter(SecondCachedFormatter())
    parent.addHandler(handler)
    return logging.getLogger(f"{name}.requests"), handler


@pytest.mark.parametrize("created", [1764086458.0, 1764086458.047, 1764086458.9996])
def test_the_direct_line_is_the_line_a_log_record_gives(created: float) -> None:
    record = logging.makeLogRecord({"msg": "%s", "args": ("req_x POST /v1/messages 200",), "name": "a.b"})
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    formatter = SecondCachedFormatter()
    assert formatter.line(logging.WARNING, "a.b", "req_x POST /v1/messages 200", created) == formatter.format(
        record
    )


def test_request_lines_skip_the_log_record_only_where_nothing_else_would_see_it() -> None:
    from proxy.requestlog import RequestLog

    stream = io.StringIO()
    logger, handler = _proxy_like_hierarchy("test.logsetup.direct", stream)
    assert sole_handler(logger, logging.INFO) is handler
    RequestLog("req_1", "/v1/messages").emit(logger)
    handler.flush()
    written = stream.getvalue()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO test\.logsetup\.direct\.requests: "
        r"req_1 POST /v1/messages 200 ttft=- dur=\d+ms in=- out=-\n",
        written,
    )
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    extra = Collect()
    logger.addHandler(extra)  # like pytest's caplog or an application's own handler
    assert sole_handler(logger, logging.INFO) is None
    RequestLog("req_2", "/v1/messages").emit(logger)
    assert [r.getMessage().split()[0] for r in seen] == ["req_2"]
    logger.removeHandler(extra)
    logger.addFilter(lambda record: True)
    assert sole_handler(logger, logging.INFO) is None
    logger.filters[:] = []
    handler.setLevel(logging.ERROR)
    assert sole_handler(logger, logging.INFO) is None
