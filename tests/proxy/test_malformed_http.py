"""HTTP that is broken below the JSON: bodies that do not decompress, requests aiohttp cannot parse.

A body aiohttp cannot decode reaches our handler as an exception from `request.read()`: it must be the client's
400 in the Anthropic envelope, not our 500. A request aiohttp cannot parse at all never reaches a handler (aiohttp
answers 400 itself); what we own there is the log, one warning line instead of an ERROR with a traceback.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib

import orjson
import pytest
from aiohttp.http_exceptions import LineTooLong

from proxy.errors import client_fault
from proxy.logsetup import ClientFaultFilter, quiet_client_faults
from tests.proxy.fake_backend import messages_body


@pytest.fixture
def client_faults_quiet():
    """The filter `ccbench proxy` installs on aiohttp's server logger, removed again after the test."""
    server_log = logging.getLogger("aiohttp.server")
    before = list(server_log.filters)
    quiet_client_faults()
    yield
    server_log.filters[:] = before


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "aiohttp.server"]


async def _raw_exchange(url: str, request: bytes) -> bytes:
    """Send bytes as they are (no client library would send these) and read until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return answer


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_decompress_is_a_400_envelope(
    backend, start_proxy, caplog, client_faults_quiet, encoding
):
    running = await start_proxy(upstream=backend.url)
    caplog.set_level(logging.INFO)
    response = await running.http.post(
        running.url + "/v1/messages",
        data=b"this is not compressed",
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )
    body = await response.json()
    assert response.status == 400
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert (
        body["error"]["message"]
        == f"request body could not be read: Can not decode content-encoding: {encoding}"
    )
    assert body["request_id"] == response.headers["request-id"]
    await asyncio.sleep(0.05)  # aiohttp logs the unreadable rest of the body after the answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [r.path for r in backend.requests if r.method == "POST"] == []  # nothing reached the backend


@pytest.mark.parametrize("compress", [gzip.compress, zlib.compress], ids=["gzip", "deflate"])
async def test_a_compressed_body_is_read_like_a_plain_one(backend, start_proxy, compress):
    running = await start_proxy(upstream=backend.url)
    encoding = "gzip" if compress is gzip.compress else "deflate"
    plain = {**messages_body(), "stream": False}
    response = await running.http.post(
        running.url + "/v1/messages",
        data=compress(orjson.dumps(plain)),
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["type"] == "message"
    assert backend.requests[-1].body["messages"][-1]["content"] == plain["messages"][-1]["content"]


async def test_the_size_limit_counts_decompressed_bytes(backend, start_proxy):
    """A 1 MB body that compresses to about 1 KB (a zip bomb in small) is over a 100 KB limit."""
    running = await start_proxy(upstream=backend.url, max_body_bytes=100_000)
    bomb = gzip.compress(
        b'{"model": "m", "messages": [{"role": "user", "content": "' + b"0" * 1_000_000 + b'"}]}'
    )
    assert len(bomb) < 10_000
    response = await running.http.post(
        running.url + "/v1/messages",
        data=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert (await response.json())["error"]["type"] == "request_too_large"


BROKEN_REQUESTS = {
    "bad chunk size": (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
        "Invalid character in chunk size",
    ),
    "header over 8190 bytes": (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\nContent-Length: 0\r\n\r\n",
        "Got more than 8190 bytes",
    ),
    "two content lengths": (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "Duplicate Content-Length",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_REQUESTS))
async def test_unparseable_http_is_a_400_and_one_warning_line(
    backend, start_proxy, caplog, client_faults_quiet, name
):
    request, reason = BROKEN_REQUESTS[name]
    running = await start_proxy(upstream=backend.url)
    caplog.set_level(logging.INFO)
    answer = await _raw_exchange(running.url, request)
    assert answer.startswith(b"HTTP/1.")
    assert answer.split(b" ", 2)[1] == b"400"
    records = _server_records(caplog)
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert reason in records[0].getMessage()
    assert "\n" not in records[0].getMessage()


def test_other_exceptions_keep_their_level_and_traceback():
    try:
        raise ValueError("a real bug")
    except ValueError as exc:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "", 0, "Unhandled exception", (), (ValueError, exc, None)
        )
    assert ClientFaultFilter().filter(record)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.getMessage() == "Unhandled exception"


def test_a_client_fault_logged_at_debug_stays_at_debug():
    """aiohttp logs garbage on a fresh connection (a bad method: port scanners, TLS to a plain port) at DEBUG."""
    exc = LineTooLong(b"x" * 10, 8190)
    record = logging.LogRecord(
        "aiohttp.server", logging.DEBUG, "", 0, "Error handling request", (), (LineTooLong, exc, None)
    )
    assert ClientFaultFilter().filter(record)
    assert record.levelno == logging.DEBUG and record.exc_info is None
    assert "Got more than 8190 bytes" in record.getMessage()


def test_client_fault_follows_the_cause_chain():
    try:
        try:
            raise LineTooLong(b"x" * 10, 8190)
        except LineTooLong as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert "Got more than 8190 bytes" in (client_fault(outer) or "")
    assert client_fault(ValueError("no")) is None
    assert client_fault(None) is None
    try:  # a bug of ours while handling a client's bad HTTP is still a bug: only `raise ... from` counts
        try:
            raise LineTooLong(b"x" * 10, 8190)
        except LineTooLong:
            raise KeyError("ours")  # noqa: B904 (the shape of a real bug)
    except KeyError as ours:
        assert client_fault(ours) is None


def test_the_filter_is_installed_once(client_faults_quiet):
    quiet_client_faults()
    quiet_client_faults()
    filters = logging.getLogger("aiohttp.server").filters
    assert sum(isinstance(f, ClientFaultFilter) for f in filters) == 1
