"""`ccbench live --from-cassette FILE --resume-at N`: a recorded prefix, then the live backend.

The fast tests drive the fork backend directly (a fake live backend records what reached it) and the CLI's
usage errors; the e2e tests run the REAL Claude Code CLI on cassettes/read_edit.yaml: a full replay through
the reference backend, and a fork at turn 1 onto a fake OpenAI server that ends the session with a text turn.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from harness.claude_cli import find_claude
from harness.cli import main
from harness.fork_session import load_fork
from harness.live import LiveTarget
from harness.live_fork import AGENT_HEADER, ForkBackend, run_fork
from harness.live_tasks import LiveError
from harness.reference import serve_on_loopback
from tests.support import assert_process_gone

REPO = Path(__file__).resolve().parents[2]
READ_EDIT = REPO / "cassettes" / "read_edit.yaml"
SUBAGENT = REPO / "cassettes" / "subagent.yaml"
CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.argv[0] = 'ccbench'; main()"]
LIVE_TEXT = "Finished by the live model."
TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
    for n in ("Read", "Edit", "Bash", "Agent")
]


# -- a fake live backend -----------------------------------------------------------------------------------------
class FakeLive:
    """An OpenAI server that records every request (path, headers, raw body) and answers with a final text."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.base_url = ""

    def chat_bodies(self) -> list[dict]:
        return [orjson.loads(s["raw"]) for s in self.seen if s["path"] == "/v1/chat/completions"]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append({"path": request.path, "headers": headers, "raw": raw})
        if request.path == "/v1/models":
            return web.json_response({"object": "list", "data": [{"id": "fake-live", "object": "model"}]})
        if request.path != "/v1/chat/completions":
            return web.json_response({"error": {"message": "not found"}}, status=404)
        body = orjson.loads(raw)
        base = {"id": "chatcmpl-fake", "created": 1, "model": body.get("model") or "fake-live"}
        if not body.get("stream"):
            message = {"role": "assistant", "content": LIVE_TEXT}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            return web.json_response(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        deltas = [
            {"role": "assistant", "content": ""},
            {"content": LIVE_TEXT[:10]},
            {"content": LIVE_TEXT[10:]},
        ]
        chunks = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
        chunks.append({"index": 0, "delta": {}, "finish_reason": "stop"})
        for choice in chunks:
            item = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        item = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        await response.write(b"data: " + orjson.dumps(item) + b"\n\n" + b"data: [DONE]\n\n")
        await response.write_eof()
        return response


@pytest.fixture
async def fake_live() -> AsyncIterator[FakeLive]:
    fake = FakeLive()
    async with serve_on_loopback(fake.app()) as root:
        fake.base_url = f"{root}/v1"
        yield fake


def chat(assistants: int, *, tools: bool = True, stream: bool = True) -> dict:
    """A translated request with `assistants` earlier assistant turns."""
    messages: list[dict] = [
        {"role": "system", "content": "You are Claude Code."},
        {"role": "user", "content": "go"},
    ]
    for n in range(assistants):
        messages.append({"role": "assistant", "content": f"step {n}"})
        messages.append({"role": "user", "content": "ok"})
    body: dict = {"model": "m", "messages": messages, "stream": stream}
    if tools:
        body["tools"] = TOOLS
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def read_sse(raw: bytes) -> tuple[str, list[dict]]:
    """(content text, tool calls as {name, arguments}) from an OpenAI stream."""
    text, calls = "", []
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for choice in orjson.loads(line[6:])["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                if "id" in call:
                    calls.append({"name": call["function"]["name"], "arguments": ""})
                calls[call["index"]]["arguments"] += call["function"].get("arguments", "")
    return text, calls


# -- fast: the cassette and the routing --------------------------------------------------------------------------
def test_the_cassette_gives_task_turns_and_workspace() -> None:
    session = load_fork(READ_EDIT, 4)
    assert session.prompt == "Change hello.py so it prints hello world, then run it."
    assert [[b["type"] for b in t] for t in session.main_turns] == [
        ["text", "tool_use"],
        ["tool_use"],
        ["tool_use"],
        ["text"],
    ]
    assert session.script is not None and session.script.files["hello.py"] == "print('hi')\n"


def test_resume_at_is_checked_against_the_recording(tmp_path: Path) -> None:
    with pytest.raises(LiveError, match="must be 0 or more"):
        load_fork(READ_EDIT, -1)
    with pytest.raises(LiveError, match=r"has 4 recorded main-agent turns \(use 0\.\.4\)"):
        load_fork(READ_EDIT, 5)
    with pytest.raises(LiveError, match="cassette not found"):
        load_fork(tmp_path / "nope.yaml", 0)


async def test_recorded_prefix_then_verbatim_live(fake_live: FakeLive) -> None:
    session = load_fork(READ_EDIT, 2)
    async with (
        ForkBackend(session, 2, fake_live.base_url, workspace="/tmp/ws", home="/tmp/home") as fork,
        aiohttp.ClientSession() as client,
    ):
        url = fork.base_url + "/chat/completions"
        # turn 0, streamed: the recorded Read, with the workspace path made real
        async with client.post(url, json=chat(0)) as r:
            assert r.status == 200
            text, calls = read_sse(await r.read())
        assert text == "I'll read the file first."
        assert [c["name"] for c in calls] == ["Read"]
        assert json.loads(calls[0]["arguments"]) == {"file_path": "/tmp/ws/hello.py"}
        # a side request before the hand-over is answered locally
        async with client.post(url, json=chat(1, tools=False)) as r:
            assert read_sse(await r.read())[0] == "OK"
        # turn 1, not streamed: the recorded Edit
        async with client.post(url, json=chat(1, stream=False)) as r:
            message = (await r.json())["choices"][0]["message"]
        assert message["tool_calls"][0]["function"]["name"] == "Edit"
        assert fake_live.chat_bodies() == []  # nothing reached the live backend yet

        # turn 2: the live backend gets the request byte for byte, and its stream comes back as it was
        raw = orjson.dumps(chat(2))
        headers = {"content-type": "application/json", "authorization": "Bearer k"}
        async with client.post(url, data=raw, headers=headers) as r:
            assert r.status == 200
            streamed = await r.read()
        assert read_sse(streamed)[0] == LIVE_TEXT
        live_call = fake_live.seen[-1]
        assert live_call["raw"] == raw and live_call["headers"]["authorization"] == "Bearer k"
        # after the hand-over side requests go live too; a retried earlier turn is still the recorded one
        async with client.post(url, json=chat(3, tools=False)) as r:
            assert read_sse(await r.read())[0] == LIVE_TEXT
        async with client.post(url, json=chat(1, stream=False)) as r:
            assert (await r.json())["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "Edit"
        async with client.get(fork.base_url + "/models") as r:
            assert (await r.json())["data"][0]["id"] == "fake-live"

    assert [len([m for m in b["messages"] if m["role"] == "assistant"]) for b in fake_live.chat_bodies()] == [
        2,
        3,
    ]
    assert [s["path"] for s in fake_live.seen] == ["/v1/chat/completions"] * 2 + ["/v1/models"]
    assert (fork.replayed_turns, fork.live_turns) == (2, 1)
    assert [(r.kind, r.index, r.source) for r in fork.requests] == [
        ("main", 0, "recorded"),
        ("auxiliary", 1, "recorded"),
        ("main", 1, "recorded"),
        ("main", 2, "live"),
        ("auxiliary", 3, "live"),
        ("main", 1, "recorded"),
    ]


async def test_subagent_requests_play_the_recorded_subagent_turns(fake_live: FakeLive) -> None:
    """The agent-id header (forwarded by the fork's proxy) tells a subagent's turn 0 from the main one."""
    session = load_fork(SUBAGENT, 1)
    async with (
        ForkBackend(session, 1, fake_live.base_url, workspace="/w") as fork,
        aiohttp.ClientSession() as client,
    ):
        url = fork.base_url + "/chat/completions"
        async with client.post(url, json=chat(0)) as r:
            assert [c["name"] for c in read_sse(await r.read())[1]] == ["Agent"]
        async with client.post(url, json=chat(0), headers={AGENT_HEADER: "a1"}) as r:
            calls = read_sse(await r.read())[1]
        assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
            ("Read", {"file_path": "/w/hello.py"})
        ]
        async with client.post(url, json=chat(1), headers={AGENT_HEADER: "a1"}) as r:
            assert read_sse(await r.read())[0] == "hello.py prints: hi from hello"
        async with client.post(url, json=chat(1)) as r:
            assert read_sse(await r.read())[0] == LIVE_TEXT
    assert AGENT_HEADER not in fake_live.seen[-1]["headers"]
    assert (fork.replayed_turns, fork.live_turns) == (1, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-cassette", "nope/missing.yaml", "--resume-at", "1"], "cassette not found"),
        (["--from-cassette", str(READ_EDIT), "--resume-at", "-1"], "must be 0 or more"),
        (["--from-cassette", str(READ_EDIT), "--resume-at", "9"], "has 4 recorded main-agent turns"),
        (["--resume-at", "1"], "go together"),
        (["--from-cassette", str(READ_EDIT), "--resume-at", "1", "--backend", "anthropic"], "OpenAI-format"),
    ],
)
def test_cli_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = CliRunner().invoke(main, ["live", *args])
    assert done.exit_code == 2, done.output
    assert message in done.output and "Traceback" not in done.output


def test_cli_without_claude_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.commands.live.find_claude", lambda _explicit=None: None)
    done = CliRunner().invoke(main, ["live", "--from-cassette", str(READ_EDIT), "--resume-at", "4"])
    assert done.exit_code == 2 and "npm install @anthropic-ai/claude-code" in done.output


# -- e2e: the real Claude Code CLI -------------------------------------------------------------------------------
def require_claude() -> Path:
    claude = find_claude()
    if claude is None:
        message = (
            "Claude Code CLI not found (npm install @anthropic-ai/claude-code, or set CCBENCH_CLAUDE_BIN)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI installs it via .ci/steps/claude-code.sh")
        pytest.skip(message)
    return claude


@pytest.mark.e2e
def test_full_replay_through_the_proxy(tmp_path: Path) -> None:
    require_claude()
    out = tmp_path / "fork.json"
    done = subprocess.run(
        [
            *CLI,
            "live",
            "--from-cassette",
            str(READ_EDIT),
            "--resume-at",
            "4",
            "--out",
            str(out),
            "--timeout",
            "120",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    summary, task = report["summary"], report["tasks"][0]
    assert report["kind"] == "live" and summary["tasks"] == 1 and summary["task_success"] == 1.0
    assert task["success"] and task["result"] == "success" and task["exit_code"] == 0
    assert summary["stream_errors"] == 0 and summary["fallbacks"] == 0 and summary["api_errors"] == 0
    assert (task["turns"], task["tool_calls"], task["tool_errors"]) == (4, 3, 0)
    assert (summary["replayed_turns"], summary["live_turns"]) == (4, 0)
    assert report["fork"] == {"cassette": str(READ_EDIT), "resume_at": 4, "recorded_turns": 4}


@pytest.mark.e2e
async def test_fork_at_turn_1_onto_a_live_backend(fake_live: FakeLive) -> None:
    claude = require_claude()
    session = load_fork(READ_EDIT, 1)
    target = LiveTarget("openai", fake_live.base_url, None, "openai", "reasoning_effort")
    result = await run_fork(session, READ_EDIT, 1, claude, target, timeout=120)

    assert result.success and result.result == "success", result
    assert result.stream_errors == 0 and result.fallbacks == 0 and result.api_errors == 0
    assert (result.turns, result.tool_calls, result.tool_errors) == (2, 1, 0)
    assert (result.replayed_turns, result.live_turns) == (1, 1)
    # the live backend saw exactly the requests from turn 1 on: one main request, after the recorded Read ran
    main_bodies = [b for b in fake_live.chat_bodies() if b.get("tools")]
    assert len(main_bodies) == 1 and result.live_requests == len(fake_live.chat_bodies())
    messages = main_bodies[0]["messages"]
    assistants = [m for m in messages if m["role"] == "assistant"]
    assert len(assistants) == 1 and assistants[0]["tool_calls"][0]["function"]["name"] == "Read"
    tool_results = [m for m in messages if m["role"] == "tool"]
    assert len(tool_results) == 1 and "print('hi')" in json.dumps(tool_results[0]["content"])


def test_cli_unreachable_live_backend_exits_2_before_claude_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ran: list[object] = []
    monkeypatch.setattr("harness.commands.live.find_claude", lambda _explicit=None: Path("/bin/true"))
    monkeypatch.setattr("harness.live_fork.run_claude", lambda *a: ran.append(a))
    args = ["--from-cassette", str(READ_EDIT), "--resume-at", "1", "--backend", "openai"]
    done = CliRunner().invoke(main, ["live", *args, "--base-url", f"http://127.0.0.1:{port}/v1"])
    assert done.exit_code == 2, done.output
    assert f"backend not reachable at http://127.0.0.1:{port}/v1/models" in done.output
    assert ran == []


HANGING_CLAUDE = """#!{python}
import os, sys, time
if "--version" in sys.argv:
    print("2.1.328 (Claude Code)")
    sys.exit(0)
open({pid_file!r}, "w").write(str(os.getpid()))
time.sleep(300)  # a stuck model: until killed
"""


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_stopping_a_fork_kills_claude_code_and_writes_nothing(tmp_path: Path, signum: int, code: int) -> None:
    """Ctrl-C (or a CI timeout's SIGTERM) during a forked session: Claude Code is killed with its process group,
    the command says so and exits 128 + signal, and no half report is written."""
    import signal
    import time

    pid_file = tmp_path / "claude.pid"
    claude = tmp_path / "claude"
    claude.write_text(HANGING_CLAUDE.format(python=sys.executable, pid_file=str(pid_file)))
    claude.chmod(0o755)
    out = tmp_path / "fork.json"
    argv = ["live", "--from-cassette", str(READ_EDIT), "--resume-at", "4", "--claude", str(claude)]
    process = subprocess.Popen(
        [*CLI, *argv, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)  # the pid is written before the sleep starts
    process.send_signal(signal.Signals(signum))
    output, _ = process.communicate(timeout=60)
    assert process.returncode == code, output
    assert "interrupted: the forked session read_edit@4 did not finish" in output, output
    assert "Traceback" not in output and "Aborted" not in output
    assert not out.exists()
    assert_process_gone(int(pid_file.read_text()), "Claude Code")
