"""The recording proxy (`ccbench record`) and the scripted upstream it records against."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anthropic
import pytest
from aiohttp import web
from click.testing import CliRunner

from harness.cassette import load_cassette
from harness.commands import record as record_module
from harness.commands.record import command as record_command
from harness.recorder import CassetteRecorder, build_recorder_app, start_site
from proxy.sse import SSEDecoder, encode_events
from tests.harness.test_cassette import stream_events

TIMEOUT = aiohttp.ClientTimeout(total=20)
SSE = encode_events(stream_events())
# cut mid-event on purpose: the recorder must not re-frame anything
SSE_CHUNKS = [SSE[:37], SSE[37:400], SSE[400:401], SSE[401:900], SSE[900:]]
N_EVENTS = len(stream_events())
USER_AGENT = "claude-cli/2.1.328 (external, sdk-cli)"


class FakeAnthropic:
    """An Anthropic-format upstream that streams SSE_CHUNKS; chunk 2 waits until the client has seen chunk 1."""

    def __init__(self) -> None:
        self.client_saw_first_chunk = asyncio.Event()
        self.waited_for_client = True
        self.gate = False  # only the liveness test gates the stream on the client
        self.requests: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)
        app.router.add_route("HEAD", "/api/hello", self.hello)
        app.router.add_post("/echo", self.echo)
        return app

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if not body.get("stream"):
            return web.json_response(
                {"type": "message", "id": "msg_1", "content": []}, headers={"request-id": "req_a"}
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": "req_b"})
        await response.prepare(request)
        for i, chunk in enumerate(SSE_CHUNKS):
            await response.write(chunk)
            if i == 0 and self.gate:
                try:
                    await asyncio.wait_for(self.client_saw_first_chunk.wait(), 5)
                except TimeoutError:
                    self.waited_for_client = False
            await asyncio.sleep(0.005)
        await response.write_eof()
        return response

    async def count_tokens(self, request: web.Request) -> web.Response:
        return web.json_response({"input_tokens": 42})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [], "has_more": False})

    async def hello(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def echo(self, request: web.Request) -> web.Response:
        """Echo the request (headers + body) back, so secrets also reach the response side."""
        return web.json_response({"headers": dict(request.headers), "body": await request.text()})


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner, port = await start_site(app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def recording(
    tmp_path: Path, upstream: FakeAnthropic | None = None
) -> AsyncIterator[tuple[str, CassetteRecorder]]:
    """A fake upstream with the recorder in front; yields (recorder URL, recorder)."""
    upstream = upstream or FakeAnthropic()
    recorder = CassetteRecorder(tmp_path / "session.yaml", meta={"upstream": "fake"})
    async with (
        serving(upstream.app()) as upstream_url,
        serving(build_recorder_app(recorder, upstream_url)) as url,
    ):
        yield url, recorder


async def test_stream_round_trips_byte_for_byte_with_timing(tmp_path: Path) -> None:
    upstream = FakeAnthropic()
    upstream.gate = True
    async with (
        recording(tmp_path, upstream) as (url, recorder),
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        received = b""
        async with http.post(
            url + "/v1/messages?beta=true",
            json={"model": "m", "stream": True, "tools": [{"name": "Read"}], "messages": []},
            headers={"user-agent": USER_AGENT, "x-claude-code-session-id": "s-1"},
        ) as response:
            assert response.status == 200
            async for chunk in response.content.iter_any():
                received += chunk
                upstream.client_saw_first_chunk.set()
    assert upstream.waited_for_client, "the recorder buffered the stream instead of passing chunks on live"
    assert received == SSE
    cassette = load_cassette(tmp_path / "session.yaml")
    (interaction,) = cassette.interactions
    assert interaction.response_body.encode() == SSE
    times = interaction.meta["event_times_ms"]
    assert len(times) == N_EVENTS
    assert times == sorted(times) and times[0] >= 0
    assert 0 <= interaction.meta["ttft_ms"] <= interaction.meta["duration_ms"]
    assert interaction.meta["request_class"] == "main" and interaction.meta["stream"] is True
    assert interaction.meta["session_id"] == "s-1"  # no normaliser here: kept as sent
    assert cassette.meta["claude_code_version"] == "2.1.328"
    assert interaction.uri.endswith("/v1/messages?beta=true")
    assert recorder.interactions[0].response_body == interaction.response_body


async def test_sdk_stream_through_the_recorder(tmp_path: Path) -> None:
    async with (
        recording(tmp_path) as (url, _),
        anthropic.AsyncAnthropic(base_url=url, api_key="sk-ant-test", max_retries=0, timeout=20) as client,
        client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        message = await stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[1].text == "Grüße, 日本 🎉"
    recorded = load_cassette(tmp_path / "session.yaml").interactions[0]
    assert recorded.response_message()["content"][2]["input"] == {"file_path": "/workspace/project/a.py"}


async def test_every_method_and_path_is_recorded_with_its_class(tmp_path: Path) -> None:
    async with recording(tmp_path) as (url, _), aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.head(url + "/api/hello") as r:
            assert r.status == 200
        async with http.post(url + "/v1/messages/count_tokens", json={"model": "m", "messages": []}) as r:
            assert await r.json() == {"input_tokens": 42}
        async with http.get(url + "/v1/models") as r:
            assert (await r.json())["has_more"] is False
        async with http.post(url + "/v1/messages", json={"model": "m", "messages": []}) as r:
            assert (await r.json())["type"] == "message"
    cassette = load_cassette(tmp_path / "session.yaml")
    summary = [(i.method, i.path, i.meta["request_class"], i.is_stream) for i in cassette.interactions]
    assert summary == [
        ("HEAD", "/api/hello", "other", False),
        ("POST", "/v1/messages/count_tokens", "count_tokens", False),
        ("GET", "/v1/models", "other", False),
        ("POST", "/v1/messages", "auxiliary", False),
    ]
    assert [i.seq for i in cassette.interactions] == [0, 1, 2, 3]
    assert cassette.interactions[1].response_message() == {"input_tokens": 42}


async def test_upstream_down_gives_529_and_records_nothing(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    recorder = CassetteRecorder(tmp_path / "c.yaml")
    async with (
        serving(build_recorder_app(recorder, dead)) as url,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.post(url + "/v1/messages", json={"model": "m", "messages": []}) as r,
    ):
        assert r.status == 529
        body = await r.json()
        assert r.headers["request-id"].startswith("req_")
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert dead in body["error"]["message"]
    assert recorder.interactions == [] and not (tmp_path / "c.yaml").exists()


async def test_concurrent_exchanges_are_all_recorded(tmp_path: Path) -> None:
    """Claude Code runs background subagents next to the main agent: overlapping requests must all land."""
    async with recording(tmp_path) as (url, _), aiohttp.ClientSession(timeout=TIMEOUT) as http:
        bodies = await asyncio.gather(*(_stream_once(http, url) for _ in range(5)))
    assert bodies == [SSE] * 5
    interactions = load_cassette(tmp_path / "session.yaml").interactions
    assert [i.seq for i in interactions] == [0, 1, 2, 3, 4]
    assert all(i.response_body.encode() == SSE for i in interactions)


async def test_unwritable_cassette_still_answers_the_client(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    recorder = CassetteRecorder(tmp_path / "file" / "c.yaml")
    async with (
        serving(FakeAnthropic().app()) as upstream_url,
        serving(build_recorder_app(recorder, upstream_url)) as url,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        assert await _stream_once(http, url) == SSE


def _start_recorder_process(upstream_url: str, cassette: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from harness.cli import main; main()",
            "record",
            "--upstream",
            upstream_url,
            "--cassette",
            str(cassette),
            "--port",
            "0",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for _ in range(50):  # the setup line comes within a few lines
        line = process.stdout.readline()
        if line.startswith("export ANTHROPIC_BASE_URL="):
            return process, line.strip().split("=", 1)[1]
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("the recorder did not print its export line")


async def _stream_once(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.post(url + "/v1/messages", json={"model": "m", "stream": True, "messages": []}) as r:
        return await r.read()


async def test_killed_recorder_keeps_every_answered_interaction(tmp_path: Path) -> None:
    cassette = tmp_path / "killed.yaml"
    async with serving(FakeAnthropic().app()) as upstream_url:
        process, url = await asyncio.to_thread(_start_recorder_process, upstream_url, cassette)
        try:
            assert load_cassette(cassette).interactions == []  # valid from the start
            async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
                for _ in range(3):
                    assert await _stream_once(http, url) == SSE
        finally:
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait, 10)
    interactions = load_cassette(cassette).interactions
    assert len(interactions) == 3
    assert all(i.response_body.encode() == SSE for i in interactions)
    assert [p.name for p in tmp_path.iterdir()] == ["killed.yaml"]  # no temp file left behind


async def test_sigterm_stops_the_recorder_cleanly(tmp_path: Path) -> None:
    cassette = tmp_path / "term.yaml"
    async with serving(FakeAnthropic().app()) as upstream_url:
        process, url = await asyncio.to_thread(_start_recorder_process, upstream_url, cassette)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            await _stream_once(http, url)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(process.communicate, None, 10)
    assert process.returncode == 0
    assert "Stopped: 1 interactions" in output and "Traceback" not in output


def _must_not_start(*_args: object) -> None:
    raise AssertionError("the recorder started despite bad input")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cassette", "c.yaml"], "--upstream is required"),
        (["--upstream", "localhost:8082", "--cassette", "c.yaml"], "http(s) root URL"),
        (["--upstream", "http://127.0.0.1:8082/v1", "--cassette", "c.yaml"], "without /v1"),
        (["--upstream", "http://x", "--script", "s.yaml", "--cassette", "c.yaml"], "drop --upstream"),
        (
            ["--upstream", "http://[::1", "--cassette", "c.yaml"],
            "--upstream must be an http(s) URL, not 'http://[::1': Invalid IPv6 URL",
        ),
        (
            ["--upstream", "http://127.0.0.1:99999", "--cassette", "c.yaml"],
            "Port out of range",
        ),
        (["--upstream", "http://:8082", "--cassette", "c.yaml"], "http(s) root URL"),
        (
            ["--upstream", "https://api.anthropic.com/v1/messages", "--cassette", "c.yaml"],
            "--upstream takes the base URL, not the /v1/messages endpoint: try https://api.anthropic.com",
        ),
    ],
)
def test_cli_usage_errors_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a check that lets bad input through must fail here at once, not start a recorder that serves until killed
    # (and writes c.yaml into the working directory)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("prompt: hi\nturns: []\n")
    monkeypatch.setattr(record_module, "_record_proxy", _must_not_start)
    monkeypatch.setattr(record_module, "_record_script", _must_not_start)
    result = CliRunner().invoke(record_command, args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            record_command,
            ["--upstream", "http://127.0.0.1:9", "--cassette", str(tmp_path / "c.yaml"), "--port", str(port)],
        )
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.parametrize(
    "mode", [["--upstream", "http://127.0.0.1:9", "--port", "0"], ["--script", "s.yaml"]]
)
def test_cli_cassette_that_cannot_be_written_exits_2_before_starting(tmp_path: Path, mode: list[str]) -> None:
    (tmp_path / "s.yaml").write_text("prompt: hi\nturns: []\n")
    (tmp_path / "a-file").write_text("")
    cassette = tmp_path / "a-file" / "c.yaml"
    mode = [str(tmp_path / arg) if arg == "s.yaml" else arg for arg in mode]
    result = CliRunner().invoke(record_command, [*mode, "--cassette", str(cassette)])
    assert result.exit_code == 2
    assert f"cannot write the cassette {cassette}: Not a directory" in result.output
    assert "Recording" not in result.output and "Traceback" not in result.output


def test_cli_bad_script_exits_2(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text("prompt: hi\nturns: [[{type: video}]]\n")
    result = CliRunner().invoke(
        record_command, ["--script", str(script), "--cassette", str(tmp_path / "c.yaml")]
    )
    assert result.exit_code == 2
    assert "block type must be one of" in result.output


def test_event_counting_matches_the_decoder() -> None:
    decoder = SSEDecoder()
    events = [e for chunk in SSE_CHUNKS for e in decoder.feed(chunk)] + decoder.flush()
    assert len(events) == N_EVENTS
    assert json.loads(events[0].data)["type"] == "message_start"
