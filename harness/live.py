"""`ccbench live`: the real Claude Code CLI, through an in-process ccbench proxy, on task scenarios.

Each task (scenarios/live/*.yaml) names a prompt, the workspace files to create, an outcome check and the
assistant turns the reference backend plays. Claude Code really executes the tools in a throwaway workspace;
the task succeeds when the outcome check passes. It is the one measure that says "Claude Code actually
completed the work", and with the reference backend it proves the proxy against the real client: every task
must succeed with zero stream errors and zero fallbacks to non-streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from aiohttp import web

from harness.claude_cli import ClaudeTranscript, claude_env, read_stream_json, run_claude
from harness.live_tasks import LiveTask, prepare_workspace
from harness.progress import elapsed_text
from harness.scripted_upstream import (
    SessionScript,
    assistant_turns_so_far,
    build_content,
    play_role,
)
from proxy.config import Config
from proxy.translate.textcalls import PROBLEM_PREFIX as TEXT_TOOL_CALL

SIDE_REPLY = "OK"
END_REPLY = "Done."
CLIENT_CLOSED = "client_closed"


# -- the reference: the task's scripted turns, served as an OpenAI backend ---------------------------------------
def openai_classify(body: dict) -> str:
    """main / subagent / auxiliary for a translated (OpenAI) request: no tools = a side request."""
    messages = body.get("messages") or []
    system = next(
        (m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "system"), ""
    )
    text = (
        system
        if isinstance(system, str)
        else " ".join(p.get("text", "") for p in system if isinstance(p, dict))
    )
    return play_role({}, {"tools": body.get("tools"), "system": text})


def _offered_name(name: str, body: dict) -> str:
    """The script names Claude Code's tools; answer with the function name the proxy offered for it."""
    offered = [t.get("function", {}).get("name", "") for t in body.get("tools") or [] if isinstance(t, dict)]
    if name in offered:
        return name
    return next(
        (o for o in offered if o.lower() == name.lower() or o.lower().endswith("_" + name.lower())), name
    )


def script_responder(script: SessionScript, workspace: str) -> Callable[[str, dict], list[dict]]:
    """For ReferenceBackend: the turn to play is the number of assistant messages so far (retries are stable)."""

    def respond(_key: str, body: dict) -> list[dict]:
        kind = openai_classify(body)
        if kind == "auxiliary":
            return [{"type": "text", "text": SIDE_REPLY}]
        turns = script.subagent_turns if kind == "subagent" else script.turns
        index = assistant_turns_so_far(body)
        turn = turns[index] if index < len(turns) else [{"type": "text", "text": END_REPLY}]
        blocks = build_content(turn, workspace)
        for block in blocks:
            if block["type"] == "tool_use":
                block["name"] = _offered_name(block["name"], body)
        return blocks

    return respond


# -- watching the proxy ------------------------------------------------------------------------------------------
@dataclass
class SeenRequest:
    """One request Claude Code sent to the proxy, as the proxy answered it."""

    path: str
    stream: bool
    main: bool  # carries tools: the agent loop, not a side request
    status: int  # 0 while in flight
    error_type: str | None  # "client_closed" when Claude Code went away (e.g. stopped at --timeout)
    text_tool_call: bool = False  # the answer held a tool call the backend left as text (its parser is off)


def observer_middleware(seen: list[SeenRequest]) -> Callable:
    """Outermost middleware: records stream flag, main-path and outcome (incl. errors sent mid-stream)."""
    from proxy.app import REQUEST_LOG

    @web.middleware
    async def observe(request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.method != "POST" or request.path != "/v1/messages":
            return await handler(request)
        body: dict = {}
        with contextlib.suppress(orjson.JSONDecodeError, UnicodeDecodeError):
            parsed = orjson.loads(await request.read())
            body = parsed if isinstance(parsed, dict) else {}
        record = SeenRequest(request.path, bool(body.get("stream")), bool(body.get("tools")), 0, None)
        seen.append(record)  # now, so a request still in flight when Claude Code is stopped is counted
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            record.status, record.error_type = 499, CLIENT_CLOSED
            raise
        entry = request.get(REQUEST_LOG)
        record.error_type = getattr(entry, "error_type", None)
        record.text_tool_call = any(p.startswith(TEXT_TOOL_CALL) for p in getattr(entry, "problems", ()))
        record.status = getattr(entry, "status", response.status) if record.error_type else response.status
        return response

    return observe


HEARTBEAT_SECONDS = 60.0


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def heartbeat_line(label: str, seen: list[SeenRequest], seconds: float) -> str:
    """`edit-file: 5 requests (1 in flight, 0 errors), 4m00s`: how far a task is while it runs."""
    waiting = sum(1 for r in seen if r.status == 0)
    errors = sum(1 for r in seen if r.error_type != CLIENT_CLOSED and (r.status >= 400 or r.error_type))
    return f"  {label}: {len(seen)} requests ({waiting} in flight, {errors} errors), {elapsed_text(seconds)}"


@contextlib.asynccontextmanager
async def heartbeat(
    label: str,
    seen: list[SeenRequest],
    every: float = HEARTBEAT_SECONDS,
    say: Callable[[str], None] = _stderr_line,
) -> AsyncIterator[None]:
    """A line every `every` seconds while Claude Code works: one turn of a CPU model takes minutes, and a task
    that printed nothing for ten could be stuck or slow; CI services stop jobs that stay silent."""
    started = time.monotonic()

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            say(heartbeat_line(label, seen, time.monotonic() - started))

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


@contextlib.asynccontextmanager
async def running_proxy(
    config: Config, seen: list[SeenRequest], label: str | None = None
) -> AsyncIterator[str]:
    """An in-process `ccbench proxy` on a free loopback port; yields its root URL (ANTHROPIC_BASE_URL). With a
    `label`, a heartbeat line reports the requests so far every minute while it serves."""
    from proxy.app import build_app

    app = build_app(config)
    app.middlewares.insert(0, observer_middleware(seen))
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        async with heartbeat(label, seen) if label else contextlib.nullcontext():
            yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@dataclass
class TaskResult:
    id: str
    success: bool
    check: str
    turns: int
    tool_calls: int
    tool_errors: int
    stream_errors: int  # streamed /v1/messages that ended in an error (HTTP status or `event: error`)
    fallbacks: int  # main-path requests sent with stream:false (Claude Code's non-streaming fallback)
    api_errors: int
    requests: int
    wall_s: float
    exit_code: int | None
    result: str | None
    timed_out: bool
    stderr_tail: str = ""
    text_tool_calls: int = 0  # main-path answers whose tool call the backend left as text


def task_result(
    task_id: str,
    check: tuple[bool, str],
    transcript: ClaudeTranscript,
    seen: list[SeenRequest],
    code: int | None,
    wall_s: float,
    stderr: str,
) -> TaskResult:
    """Combine the outcome check, Claude Code's view and the proxy's view into one record (pure)."""
    messages = [s for s in seen if s.path == "/v1/messages"]
    return TaskResult(
        id=task_id,
        success=check[0],
        check=check[1],
        turns=transcript.turns,
        tool_calls=transcript.tool_calls,
        tool_errors=transcript.tool_errors,
        stream_errors=sum(
            1
            for s in messages
            if s.stream and s.error_type != CLIENT_CLOSED and (s.status >= 400 or s.error_type)
        ),
        fallbacks=sum(1 for s in messages if s.main and not s.stream),
        api_errors=transcript.api_errors,
        requests=len(messages),
        wall_s=round(wall_s, 3),
        exit_code=code,
        result=transcript.result,
        timed_out=code is None,
        stderr_tail="" if code == 0 else stderr.strip()[-500:],
        text_tool_calls=sum(1 for s in messages if s.main and s.text_tool_call),
    )


@dataclass
class LiveTarget:
    """Where the proxy sends requests: None = the reference backend playing each task's turns."""

    preset: str = "reference"
    base_url: str | None = None
    model: str | None = None
    upstream_format: str = "openai"
    thinking: str = "none"
    max_output_tokens: int | None = None  # the proxy's cap on max_tokens (--max-output-tokens)


@contextlib.asynccontextmanager
async def backend_for(task: LiveTask, target: LiveTarget, workspace: Path) -> AsyncIterator[str]:
    """The OpenAI base URL for this task: a fresh reference backend, or the user's server."""
    if target.preset != "reference":
        yield str(target.base_url)
        return
    from harness.reference import ReferenceBackend

    async with ReferenceBackend(responder=script_responder(task.script, str(workspace))) as backend:
        yield backend.base_url


async def run_task(task: LiveTask, claude: Path, target: LiveTarget, timeout: float) -> TaskResult:
    """One task in a throwaway workspace and HOME; the proxy and (for the reference) the backend live in-process."""
    with tempfile.TemporaryDirectory(prefix=f"ccbench-live-{task.id}-") as tmp:
        workspace, home = Path(tmp) / "workspace", Path(tmp) / "home"
        workspace.mkdir()
        home.mkdir()
        prepare_workspace(task, workspace.resolve())
        seen: list[SeenRequest] = []
        started = time.perf_counter()
        async with backend_for(task, target, workspace.resolve()) as upstream:
            config = Config(upstream=upstream, upstream_format=target.upstream_format, model=target.model,
                            thinking=target.thinking, max_output_tokens=target.max_output_tokens)  # fmt: skip
            async with running_proxy(config, seen, label=task.id) as proxy_url:
                env = claude_env(proxy_url, home, os.environ, target.max_output_tokens)
                code, out, err = await run_claude(claude, task.script.prompt, workspace, env, timeout)
        wall = time.perf_counter() - started
        check = await asyncio.to_thread(task.check.evaluate, workspace)
        return task_result(task.id, check, read_stream_json(out), seen, code, wall, err)


def live_summary(results: list[TaskResult]) -> dict:
    """summary.tasks, summary.task_success (a fraction; null when nothing ran) and the error totals."""
    total = len(results)
    return {
        "tasks": total,
        "task_success": (sum(r.success for r in results) / total) if total else None,
        "succeeded": sum(r.success for r in results),
        "turns": sum(r.turns for r in results),
        "tool_errors": sum(r.tool_errors for r in results),
        "stream_errors": sum(r.stream_errors for r in results),
        "fallbacks": sum(r.fallbacks for r in results),
        "text_tool_calls": sum(r.text_tool_calls for r in results),
        "api_errors": sum(r.api_errors for r in results),
        "timeouts": sum(r.timed_out for r in results),
        "wall_s": round(sum(r.wall_s for r in results), 3),
    }


def live_report(
    results: list[TaskResult], target: LiveTarget, claude_version: str | None, timeout: float | None = None
) -> dict:
    from proxy import __version__

    return {
        "schema_version": 1,
        "kind": "live",
        "ccbench_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backend": {"preset": target.preset, "base_url": target.base_url},
        "model": target.model,
        "run": {"timeout_s": timeout, "max_output_tokens": target.max_output_tokens},
        "claude_code_version": claude_version,
        "summary": live_summary(results),
        "tasks": [asdict(r) for r in results],
    }
