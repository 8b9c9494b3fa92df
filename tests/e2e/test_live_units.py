"""`ccbench live` pieces that need neither the Claude Code CLI nor a model: tasks, checks, transcript, accounting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import sys
from pathlib import Path

import aiohttp
import click
import pytest
from click.testing import CliRunner

from harness.claude_cli import CLAUDE_BIN_ENV, find_claude, read_stream_json
from harness.cli import main
from harness.live import (
    CLIENT_CLOSED,
    SeenRequest,
    heartbeat,
    heartbeat_line,
    live_summary,
    running_proxy,
    script_responder,
    task_result,
)
from harness.live_tasks import LiveError, OutcomeCheck, load_live_tasks, parse_check, prepare_workspace
from harness.reference import ReferenceBackend
from proxy.config import Config
from tests.support import assert_process_gone

DATA = Path(__file__).with_name("data")
LIVE_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "live"
TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
    for n in ("Read", "Edit", "Bash")
]


def test_repo_tasks_load_and_cover_the_required_kinds() -> None:
    tasks = {t.id: t for t in load_live_tasks(LIVE_DIR)}
    assert {"edit-file", "write-run-script", "recover-tool-error"} <= set(tasks)
    for task in tasks.values():
        assert task.script.prompt and task.script.turns
        assert task.script.turns[-1][-1]["type"] == "text"  # every script ends the session with a text turn


def test_unknown_task_id_is_named() -> None:
    with pytest.raises(LiveError, match="unknown live task.*nope"):
        load_live_tasks(LIVE_DIR, ["nope"])


def test_check_parsing_rejects_bad_shapes() -> None:
    with pytest.raises(LiveError, match="check must be"):
        parse_check({"file": {}, "command": {}}, "t.yaml")
    with pytest.raises(LiveError, match="unknown keys"):
        parse_check({"file": {"path": "a", "startswith": "x"}}, "t.yaml")
    with pytest.raises(LiveError, match="check.command.run is required"):
        parse_check({"command": {"output_contains": "x"}}, "t.yaml")


def test_outcome_checks_pass_and_fail_on_the_real_workspace(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("debug = false\n")
    assert OutcomeCheck("file", path="a.txt", contains="debug = false").evaluate(tmp_path)[0]
    assert not OutcomeCheck("file", path="a.txt", equals="debug = true\n").evaluate(tmp_path)[0]
    assert not OutcomeCheck("file", path="missing.txt", contains="x").evaluate(tmp_path)[0]
    assert OutcomeCheck("command", run="cat a.txt", output_contains="false").evaluate(tmp_path)[0]
    ok, seen = OutcomeCheck("command", run="exit 3").evaluate(tmp_path)
    assert not ok and "exited 3" in seen


def test_workspace_files_are_created_and_the_task_starts_failing(tmp_path: Path) -> None:
    """Each task's check must fail before Claude Code works on it (else success would prove nothing)."""
    for task in load_live_tasks(LIVE_DIR):
        workspace = tmp_path / task.id
        workspace.mkdir()
        prepare_workspace(task, workspace)
        assert not task.check.evaluate(workspace)[0], task.id


def test_stream_json_transcript_counts_turns_and_tool_errors() -> None:
    transcript = read_stream_json((DATA / "claude_stream_json_tool_error.jsonl").read_text())
    assert transcript.turns == 3
    assert transcript.tool_calls == 2
    assert transcript.tool_errors == 1  # Read of a missing file
    assert transcript.result == "success" and transcript.is_error is False
    assert transcript.final_text == "Created it."
    assert read_stream_json("not json\n{}\n").turns == 0


def test_task_result_counts_stream_errors_and_fallbacks_from_what_the_proxy_saw() -> None:
    seen = [
        SeenRequest("/v1/messages", True, True, 200, None),
        SeenRequest("/v1/messages", True, True, 200, "overloaded_error"),  # error event mid-stream
        SeenRequest("/v1/messages", False, True, 200, None),  # non-streaming fallback on the main path
        SeenRequest("/v1/messages", False, False, 200, None),  # side request without tools: not a fallback
        SeenRequest("/v1/messages", True, True, 529, "overloaded_error"),
        SeenRequest(
            "/v1/messages", True, True, 499, "client_closed"
        ),  # Claude Code stopped: not a stream error
    ]
    transcript = read_stream_json((DATA / "claude_stream_json_tool_error.jsonl").read_text())
    result = task_result("t", (True, "ok"), transcript, seen, 0, 1.5, "")
    assert (result.stream_errors, result.fallbacks, result.requests) == (2, 1, 6)
    assert result.success and not result.timed_out and result.tool_errors == 1
    timed_out = task_result("t", (False, "no file"), transcript, [], None, 300.0, "boom")
    assert timed_out.timed_out and timed_out.stderr_tail == "boom"


def test_summary_fractions_and_empty_run() -> None:
    transcript = read_stream_json("")
    results = [task_result(str(i), (i % 2 == 0, ""), transcript, [], 0, 1.0, "") for i in range(4)]
    summary = live_summary(results)
    assert summary["tasks"] == 4 and summary["task_success"] == 0.5
    assert live_summary([])["task_success"] is None


def test_script_responder_plays_turns_by_conversation_position() -> None:
    task = next(t for t in load_live_tasks(LIVE_DIR) if t.id == "edit-file")
    respond = script_responder(task.script, "/tmp/ws")
    first = respond("", {"tools": TOOLS, "messages": [{"role": "user", "content": "go"}]})
    read = next(b for b in first if b["type"] == "tool_use")
    assert read["name"] == "Read" and read["input"]["file_path"] == "/tmp/ws/hello.py"
    assert read["id"].startswith("toolu_")
    second = respond(
        "", {"tools": TOOLS, "messages": [{"role": "user"}, {"role": "assistant"}, {"role": "tool"}]}
    )
    assert second[0]["name"] == "Edit"
    assert respond("", {"messages": [{"role": "user", "content": "title?"}]}) == [
        {"type": "text", "text": "OK"}
    ]
    past_end = respond("", {"tools": TOOLS, "messages": [{"role": "assistant"}] * 10})
    assert past_end[0]["type"] == "text"


def test_script_responder_uses_the_offered_function_name() -> None:
    task = next(t for t in load_live_tasks(LIVE_DIR) if t.id == "edit-file")
    renamed = [{"type": "function", "function": {"name": "mcp_read"}}]
    blocks = script_responder(task.script, "/w")("", {"tools": renamed, "messages": []})
    assert next(b for b in blocks if b["type"] == "tool_use")["name"] == "mcp_read"


def test_find_claude_search_order(tmp_path: Path) -> None:
    binary = tmp_path / "claude"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    assert find_claude(None, {CLAUDE_BIN_ENV: str(binary), "PATH": "", "HOME": str(tmp_path)}) == binary
    assert find_claude(str(binary), {"PATH": "", "HOME": str(tmp_path)}) == binary
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / "claude").symlink_to(binary)
    assert find_claude(None, {"PATH": str(on_path), "HOME": str(tmp_path)}) == on_path / "claude"
    with pytest.raises(LiveError, match="not an executable"):
        find_claude(str(tmp_path / "missing"), {"PATH": ""})


def test_live_without_cli_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("harness.claude_cli.claude_search_paths", lambda env: [])
    monkeypatch.delenv(CLAUDE_BIN_ENV, raising=False)
    monkeypatch.delenv("CLAUDE_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["live"])
    assert result.exit_code == 2
    assert "npm install @anthropic-ai/claude-code" in result.output


async def test_proxy_observer_sees_fallbacks_and_errors() -> None:
    """The in-process proxy records what Claude Code sent: stream flag, main path, and failures."""

    def respond(_key: str, body: dict) -> list[dict] | None:
        return None if "fail" in str(body["messages"]) else [{"type": "text", "text": "hi"}]

    tool = {"name": "Read", "description": "read", "input_schema": {"type": "object"}}
    seen: list[SeenRequest] = []
    async with contextlib.AsyncExitStack() as stack:
        backend = await stack.enter_async_context(ReferenceBackend(responder=respond))
        config = Config(upstream=backend.base_url, thinking="none")
        proxy_url = await stack.enter_async_context(running_proxy(config, seen))
        session = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        )
        for stream, text, tools in (
            (True, "a", [tool]),
            (False, "b", [tool]),
            (False, "c", []),
            (True, "fail", [tool]),
        ):
            body = {"model": "m", "max_tokens": 16, "stream": stream, "tools": tools,
                    "messages": [{"role": "user", "content": text}]}  # fmt: skip
            async with session.post(f"{proxy_url}/v1/messages", json=body) as response:
                await response.read()
    assert [(s.stream, s.main) for s in seen] == [(True, True), (False, True), (False, False), (True, True)]
    assert [s.status < 400 and s.error_type is None for s in seen] == [True, True, True, False]
    result = task_result("t", (True, ""), read_stream_json(""), seen, 0, 1.0, "")
    assert (result.fallbacks, result.stream_errors) == (1, 1)


@pytest.mark.parametrize("extra", [[], ["--from-cassette", "session.yaml", "--resume-at", "1"]])
def test_live_refuses_an_unwritable_out_before_claude_code_runs(tmp_path: Path, extra: list[str]) -> None:
    """Was: the results of a whole live session lost to an OSError traceback at the end."""
    plain_file = tmp_path / "plain.txt"
    plain_file.write_text("not a folder")
    result = CliRunner().invoke(main, ["live", "--out", str(plain_file / "live.json"), *extra])
    assert result.exit_code == 2, result.output
    assert f"cannot write {plain_file / 'live.json'}: Not a directory" in result.output
    assert "Traceback" not in result.output


def test_live_writes_its_report_into_a_missing_folder(tmp_path: Path) -> None:
    from harness.commands.options import write_output_file

    target = tmp_path / "reports" / "live" / "r.json"
    write_output_file(target, '{"ok": true}\n')
    assert target.read_text() == '{"ok": true}\n'
    with pytest.raises(click.UsageError, match="Not a directory"):
        write_output_file(target / "below-a-file.json", "{}")


async def test_live_names_the_model_the_backend_serves() -> None:
    """The report's `model` was null without --model: the proxy used the backend's first model, unnamed."""
    from harness.commands.live import probed
    from harness.live import LiveTarget
    from tests.proxy.fake_backend import FakeBackend

    async with FakeBackend(model="qwen3-coder-30b") as backend:
        found = await probed(LiveTarget("vllm", backend.url, None, "openai", "chat_template_kwargs"))
        pinned = await probed(LiveTarget("vllm", backend.url, "mine", "openai", "chat_template_kwargs"))
    assert found.model == "qwen3-coder-30b" and found.base_url == backend.url
    assert pinned.model == "mine"
    assert (await probed(LiveTarget())).model is None  # the reference backend needs no probe


def test_live_fails_fast_on_an_unreachable_backend(tmp_path: Path) -> None:
    """Before Claude Code starts (it would retry against a dead proxy upstream for minutes)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    marker = tmp_path / "claude-ran"
    claude = tmp_path / "claude"
    claude.write_text(f"#!/bin/sh\ntouch {marker}\necho 2.1.328\n")
    claude.chmod(0o755)
    url = f"http://127.0.0.1:{port}/v1"
    result = CliRunner().invoke(
        main,
        ["live", "--backend", "vllm", "--base-url", url, "--claude", str(claude), "--scenario", "edit-file"],
    )
    assert result.exit_code == 2, result.output
    assert f"backend not reachable at {url}/models" in result.output
    assert not marker.exists()


async def test_proxy_observer_counts_tool_calls_the_backend_left_as_text() -> None:
    """A backend with its tool parser off: Claude Code runs nothing; the live report says why."""
    hermes = '<tool_call>\n{"name": "Read", "arguments": {"file_path": "a.py"}}\n</tool_call>'

    def respond(_key: str, body: dict) -> list[dict] | None:
        return [{"type": "text", "text": hermes if "call" in str(body["messages"]) else "done"}]

    tool = {"name": "Read", "description": "read", "input_schema": {"type": "object"}}
    seen: list[SeenRequest] = []
    async with contextlib.AsyncExitStack() as stack:
        backend = await stack.enter_async_context(ReferenceBackend(responder=respond))
        proxy_url = await stack.enter_async_context(running_proxy(Config(upstream=backend.base_url), seen))
        session = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        )
        for stream, text in ((True, "call"), (False, "call"), (True, "plain")):
            body = {"model": "m", "max_tokens": 16, "stream": stream, "tools": [tool],
                    "messages": [{"role": "user", "content": text}]}  # fmt: skip
            async with session.post(f"{proxy_url}/v1/messages", json=body) as response:
                await response.read()
    assert [s.text_tool_call for s in seen] == [True, True, False]
    result = task_result("t", (False, ""), read_stream_json(""), seen, 0, 1.0, "")
    assert result.text_tool_calls == 2
    assert live_summary([result])["text_tool_calls"] == 2


def test_heartbeat_line_counts_requests_in_flight_and_errors() -> None:
    seen = [
        SeenRequest("/v1/messages", True, True, 200, None),
        SeenRequest("/v1/messages", True, True, 200, "api_error"),  # an `event: error` mid-stream
        SeenRequest("/v1/messages", False, True, 529, "overloaded_error"),
        SeenRequest("/v1/messages", True, True, 499, CLIENT_CLOSED),  # Claude Code went away: not an error
        SeenRequest("/v1/messages", True, True, 0, None),
    ]
    assert (
        heartbeat_line("edit-file", seen, 245.9) == "  edit-file: 5 requests (1 in flight, 2 errors), 4m05s"
    )


async def test_heartbeat_reports_while_the_task_runs_and_stops_after() -> None:
    lines: list[str] = []
    seen: list[SeenRequest] = []
    async with heartbeat("t", seen, every=0.05, say=lines.append):
        seen.append(SeenRequest("/v1/messages", True, True, 0, None))
        for _ in range(200):  # until two beats, however loaded the machine
            if len(lines) >= 2:
                break
            await asyncio.sleep(0.02)
    assert len(lines) >= 2 and lines[-1].startswith("  t: 1 requests (1 in flight, 0 errors), ")
    count = len(lines)
    await asyncio.sleep(0.2)
    assert len(lines) == count  # no beat once the task is over


FAKE_CLAUDE = """#!{python}
import json, os, sys, urllib.request
if "--version" in sys.argv:
    print("2.1.328 (Claude Code)")
    sys.exit(0)
with open(os.path.join(os.path.dirname(sys.argv[0]), "env-cap"), "w") as seen:
    seen.write(os.environ.get("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "unset"))
body = {{"model": "claude-sonnet-4-5", "max_tokens": 32000, "messages": [{{"role": "user", "content": "hi"}}],
        "tools": [{{"name": "Read", "description": "r", "input_schema": {{"type": "object"}}}}]}}
request = urllib.request.Request(
    os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=json.dumps(body).encode(),
    headers={{"content-type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01"}})
urllib.request.urlopen(request, timeout=60).read()
print(json.dumps({{"type": "result", "subtype": "success", "result": "ok", "num_turns": 1, "is_error": False}}))
"""


def test_live_caps_output_tokens_and_records_the_cap(tmp_path: Path) -> None:
    """--max-output-tokens reaches the backend through live's in-process proxy and lands in the report."""
    from tests.proxy.backend_thread import BackendThread
    from tests.proxy.fake_backend import FakeBackend

    claude = tmp_path / "claude"
    claude.write_text(FAKE_CLAUDE.format(python=sys.executable))
    claude.chmod(0o755)
    out = tmp_path / "live.json"
    backend = FakeBackend()
    with BackendThread(backend) as running:
        argv = ["live", "--backend", "vllm", "--base-url", running.url, "--claude", str(claude)]
        argv += ["--scenario", "edit-file", "--max-output-tokens", "50", "--timeout", "60", "--out", str(out)]
        result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    sent = [r.body for r in backend.requests if r.path.endswith("/chat/completions")]
    assert len(sent) == 1 and sent[0]["max_tokens"] == 50  # Claude Code asked for 32,000
    report = json.loads(out.read_text())
    assert report["run"] == {"timeout_s": 60.0, "max_output_tokens": 50}
    # and Claude Code is told, as a user would tell it, so it names the real limit when an answer is cut
    assert (tmp_path / "env-cap").read_text() == "50"


def test_live_refuses_a_cap_for_an_anthropic_backend() -> None:
    argv = ["live", "--backend", "anthropic", "--base-url", "http://127.0.0.1:9", "--max-output-tokens", "5"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    assert "--max-output-tokens caps what the proxy sends to an OpenAI-format backend" in result.output


SLOW_SECOND_CLAUDE = """#!{python}
import json, os, sys, time
if "--version" in sys.argv:
    print("2.1.328 (Claude Code)")
    sys.exit(0)
marker = {marker!r}
if os.path.exists(marker):  # the second task: hang as a stuck model would, until killed
    open({pid_file!r}, "w").write(str(os.getpid()))
    time.sleep(300)
open(marker, "w").close()
print(json.dumps({{"type": "result", "subtype": "success", "result": "ok", "num_turns": 1, "is_error": False}}))
"""


def test_ctrl_c_during_live_keeps_the_finished_tasks_and_kills_claude_code(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "second.pid"
    claude = tmp_path / "claude"
    claude.write_text(
        SLOW_SECOND_CLAUDE.format(
            python=sys.executable, marker=str(tmp_path / "first-done"), pid_file=str(pid_file)
        )
    )
    claude.chmod(0o755)
    out = tmp_path / "live.json"
    cli = [sys.executable, "-c", "import sys; from harness.cli import main; sys.argv[0] = 'ccbench'; main()"]
    argv = ["live", "--claude", str(claude), "--scenario", "edit-file", "--scenario", "write-run-script"]
    process = subprocess.Popen(
        [*cli, *argv, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)  # the pid is written before the sleep starts
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted after 1 of 2 tasks" in output and "Traceback" not in output
    report = json.loads(out.read_text())
    assert [task["id"] for task in report["tasks"]] == ["edit-file"]
    assert report["run"]["interrupted"] == {"finished": 1, "planned": 2}
    # killed with its process group, not left running
    assert_process_gone(int(pid_file.read_text()), "the stopped task's Claude Code")
