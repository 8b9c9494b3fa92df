"""Record one scripted session with the real Claude Code CLI.

The scripted upstream plays the chosen assistant turns, `ccbench record` sits in front of it, and Claude Code
runs `-p <prompt>` in a throwaway git workspace, so the tools really run and the tool results are real.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.cassette import Interaction
from harness.recorder import CassetteRecorder, build_recorder_app, start_site
from harness.redact import HOME_ALIAS, WORKSPACE_ALIAS, Normalizer
from harness.scripted_upstream import ScriptedUpstream, SessionScript, build_scripted_app

FAKE_KEY = "sk-ant-local-fake"
DEFAULT_RECORD_PORT = 8083
GIT_DATE = "2026-01-01T00:00:00Z"  # fixed commit dates keep the commit hash (shown to the model) stable


class RecordingError(RuntimeError):
    """The session could not be recorded (no Claude Code binary, workspace setup failed, ...)."""


@dataclass
class SessionResult:
    name: str
    cassette: Path
    exit_code: int | None
    result_subtype: str | None
    main_turns: int
    expected_main_turns: int
    interactions: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def find_claude(explicit: str | None = None) -> str:
    """The Claude Code binary, found as `ccbench live` finds it (harness.claude_cli.find_claude)."""
    from harness.claude_cli import CLAUDE_INSTALL_HINT
    from harness.claude_cli import find_claude as locate
    from harness.live_tasks import LiveError

    try:
        found = locate(explicit)
    except LiveError as exc:
        raise RecordingError(str(exc)) from exc
    if found is None:
        raise RecordingError(CLAUDE_INSTALL_HINT)
    return str(found)


def prepare_workspace(root: Path, script: SessionScript) -> None:
    """Write the script's files and make the directory a git repository with one fixed commit."""
    for name, text in script.files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": GIT_DATE,
        "GIT_COMMITTER_DATE": GIT_DATE,
        "GIT_AUTHOR_NAME": "Example Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Example Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    commands = [
        "git init -q -b main",
        "git config user.name 'Example Dev' && git config user.email dev@example.com",
        "git add -A && git commit -q --allow-empty -m initial",
        *script.setup,
    ]
    for command in commands:
        done = subprocess.run(
            command, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RecordingError(f"workspace setup `{command}` failed: {done.stderr.strip()}")


def claude_env(base_url: str, home: Path, extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """A clean environment: the fake key, no real credentials, no updater or telemetry traffic."""
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "AWS_", "GITHUB_"))
    }
    env = {
        **keep,
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": FAKE_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "IS_SANDBOX": "1",
    }
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def final_result(stream_json: str) -> dict | None:
    """The last `result` event of Claude Code's stream-json output."""
    result = None
    for line in stream_json.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("type") == "result":
            result = event
    return result


def count_main_turns(interactions: list[Interaction]) -> int:
    return sum(1 for i in interactions if i.path == "/v1/messages" and i.meta.get("request_class") == "main")


def check_session(result: SessionResult, cassette_bytes: bytes, leaks: tuple[str, ...] = ()) -> list[str]:
    """Everything that makes a recording unusable, as messages (`leaks`: strings that must not appear)."""
    problems = [f"{leak} leaked into the cassette" for leak in leaks if leak.encode() in cassette_bytes]
    if result.exit_code != 0:
        problems.append(f"claude exited {result.exit_code}")
    if result.result_subtype != "success":
        problems.append(f"claude result is {result.result_subtype!r}, not 'success'")
    if result.main_turns != result.expected_main_turns:
        problems.append(f"cassette has {result.main_turns} main turns, expected {result.expected_main_turns}")
    if FAKE_KEY.encode() in cassette_bytes:
        problems.append(f"the API key {FAKE_KEY} leaked into the cassette")
    return problems


async def record_session(
    script: SessionScript,
    cassette: Path,
    *,
    claude_bin: str,
    normalize: bool = True,
    timeout_s: float = 300.0,
    event_delay_s: float = 0.002,
) -> SessionResult:
    """Run Claude Code on the script's prompt through the recorder; returns what happened and what is wrong."""
    workspace = Path(os.path.realpath(tempfile.mkdtemp(prefix="ccbench-ws-")))
    home = Path(os.path.realpath(tempfile.mkdtemp(prefix="ccbench-home-")))
    runners = []
    try:
        prepare_workspace(workspace, script)
        upstream = ScriptedUpstream(script, workspace=str(workspace))
        up_runner, up_port = await start_site(build_scripted_app(upstream, event_delay_s), "127.0.0.1", 0)
        runners.append(up_runner)
        normalizer = (
            Normalizer(paths={str(workspace): WORKSPACE_ALIAS, str(home): HOME_ALIAS}) if normalize else None
        )
        meta = {"upstream": "scripted", "description": script.description or script.name}
        cassette.unlink(missing_ok=True)
        recorder = CassetteRecorder(cassette, meta=meta, normalizer=normalizer)
        app = build_recorder_app(recorder, f"http://127.0.0.1:{up_port}")
        rec_runner, rec_port = await start_site(app, "127.0.0.1", 0)
        runners.append(rec_runner)
        if normalizer:  # the free port differs per run; record the default address instead
            normalizer.paths[f"127.0.0.1:{rec_port}"] = f"127.0.0.1:{DEFAULT_RECORD_PORT}"
        args = [claude_bin, "-p", script.prompt, "--dangerously-skip-permissions"]
        args += ["--output-format", "stream-json", "--verbose"]
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=workspace,
            env=claude_env(f"http://127.0.0.1:{rec_port}", home, script.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, _stderr = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            stdout = b""
        text = stdout.decode("utf-8", "replace")
        result_event = final_result(text) or {}
        result = SessionResult(
            name=script.name,
            cassette=cassette,
            exit_code=process.returncode,
            result_subtype=result_event.get("subtype"),
            main_turns=count_main_turns(recorder.interactions),
            expected_main_turns=script.main_turns,
            interactions=len(recorder.interactions),
        )
        cassette_bytes = cassette.read_bytes() if cassette.exists() else b""
        leaks = (workspace.name, home.name) if normalize else ()
        result.problems = check_session(result, cassette_bytes, leaks)
        return result
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
