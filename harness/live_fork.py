"""`ccbench live --from-cassette FILE --resume-at N`: fork a recorded session onto a live model.

The real Claude Code CLI runs the task of a recorded cassette (the first user prompt of its first main
interaction, in a workspace built from the session script it was recorded with, when there is one). The
proxy's upstream is a small OpenAI-format "fork" backend: it answers the first N main-agent turns with the
cassette's recorded assistant turns (converted to OpenAI chunks like the reference backend does) and, from
turn N on, passes every request verbatim to the live backend (streaming through). The turn of a request is
the number of assistant messages in the translated conversation, as `ReferenceBackend` counts it, so a
retried request gets the same answer and the same routing.

Before the hand-over, subagent and side requests (no tools) are answered from the recording too; after it,
they go to the live backend like everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from harness.claude_cli import claude_env, read_stream_json, run_claude
from harness.fork_session import RecordedSession
from harness.live import (
    END_REPLY,
    SIDE_REPLY,
    LiveTarget,
    SeenRequest,
    TaskResult,
    _offered_name,
    openai_classify,
    running_proxy,
    task_result,
)
from harness.live_tasks import LiveError
from harness.redact import HOME_ALIAS, WORKSPACE_ALIAS
from harness.reference import (
    REFERENCE_MODEL,
    TURN_HEADER,
    LoopbackBackend,
    Responder,
    answer_completion,
)
from harness.scripted_upstream import SessionScript, assistant_turns_so_far
from proxy.config import Config
from proxy.upstream import server_root

RECORDED, LIVE = "recorded", "live"
# Claude Code marks subagent requests with this header; the translated body no longer shows it (the proxy drops
# the billing block that says cc_is_subagent=true), so the fork's proxy forwards the header to the fork.
AGENT_HEADER = "x-claude-code-agent-id"
SUBAGENT_KEY = "subagent"  # sent as x-ccbench-turn to a reference live backend, which cannot see the header


def _localise(value: Any, workspace: str, home: str) -> Any:
    """Recorded paths use the recorder's aliases; the fork runs in a real temp workspace and HOME."""
    if isinstance(value, str):
        return value.replace(WORKSPACE_ALIAS, workspace).replace(HOME_ALIAS, home)
    if isinstance(value, list):
        return [_localise(v, workspace, home) for v in value]
    if isinstance(value, dict):
        return {k: _localise(v, workspace, home) for k, v in value.items()}
    return value


# -- the fork backend --------------------------------------------------------------------------------------------
@dataclass
class ForkRequest:
    """One chat request the fork answered: which conversation, which turn, and who answered it."""

    kind: str  # main / subagent / auxiliary
    index: int  # assistant messages in the request
    source: str  # "recorded" or "live"
    status: int = 0


def _openai_error(status: int, message: str, kind: str = "api_error") -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status
    )


HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}
NOT_FORWARDED = HOP_HEADERS | {AGENT_HEADER}  # the live backend gets what the proxy alone would have sent


class ForkBackend(LoopbackBackend):
    """OpenAI-format server: the recorded prefix (main turns < resume_at), then the live backend verbatim."""

    runner_options = {"handler_cancellation": True, "shutdown_timeout": 1}

    def __init__(
        self,
        session: RecordedSession,
        resume_at: int,
        live_base_url: str,
        *,
        workspace: str = WORKSPACE_ALIAS,
        home: str = HOME_ALIAS,
        model: str = REFERENCE_MODEL,
        request_timeout: float | None = None,
        mark_subagents: bool = False,
    ) -> None:
        super().__init__()
        self.session = session
        self.resume_at = resume_at
        self.live_base_url = live_base_url.rstrip("/")
        self.live_root = server_root(self.live_base_url)
        self.workspace, self.home, self.model = workspace, home, model
        self.request_timeout = request_timeout
        self.mark_subagents = mark_subagents  # tell a reference live backend (x-ccbench-turn: subagent)
        self.requests: list[ForkRequest] = []
        self.handed_over = False  # a main request reached turn resume_at: everything goes live from here
        self._ids = itertools.count(1)
        self._client: aiohttp.ClientSession | None = None

    # routing
    def route(self, body: dict, subagent: bool = False) -> tuple[str, int, list[dict] | None]:
        """(kind, turn index, recorded blocks to play) for a chat request; blocks None = send it live.

        `subagent`: the request carried Claude Code's agent-id header (forwarded by the fork's proxy).
        """
        kind = "subagent" if subagent and body.get("tools") else openai_classify(body)
        index = assistant_turns_so_far(body)
        if kind == "main" and index >= self.resume_at:
            self.handed_over = True
        if self.handed_over and (kind != "main" or index >= self.resume_at):
            return kind, index, None
        return kind, index, self.recorded_answer(kind, index, body)

    def recorded_answer(self, kind: str, index: int, body: dict) -> list[dict]:
        """The recorded turn for this request (a short text past the end of the recording)."""
        session = self.session
        if kind == "main":
            turns = session.main_turns
            turn = turns[index] if index < len(turns) else [{"type": "text", "text": END_REPLY}]
        elif kind == "subagent":
            turn = session.subagent_turns.get(index) or [{"type": "text", "text": END_REPLY}]
        else:
            side = session.side_replies
            turn = side.get(index) or (side[max(side)] if side else [{"type": "text", "text": SIDE_REPLY}])
        return self._blocks(turn, body)

    def _blocks(self, turn: list[dict], body: dict) -> list[dict]:
        blocks = _localise(turn, self.workspace, self.home)
        for block in blocks:
            if block.get("type") == "tool_use":
                block["name"] = _offered_name(str(block.get("name", "")), body)
        return blocks

    @property
    def replayed_turns(self) -> int:
        return len({r.index for r in self.requests if r.kind == "main" and r.source == RECORDED})

    @property
    def live_turns(self) -> int:
        return len({r.index for r in self.requests if r.kind == "main" and r.source == LIVE})

    # server
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_route("*", "/{tail:.*}", self._passthrough)
        return app

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        """The client session that talks to the live backend."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self.request_timeout)
        self._client = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return _openai_error(400, "request body is not a JSON object", "invalid_request_error")
        kind, index, blocks = self.route(body, bool(request.headers.get(AGENT_HEADER)))
        record = ForkRequest(kind, index, LIVE if blocks is None else RECORDED)
        self.requests.append(record)
        if blocks is None:
            response = await self._forward(request, self.live_base_url + "/chat/completions", raw)
        else:
            response = await self._play(request, body, blocks)
        record.status = response.status
        return response

    async def _play(self, request: web.Request, body: dict, blocks: list[dict]) -> web.StreamResponse:
        return await answer_completion(request, body, blocks, f"chatcmpl-fork{next(self._ids)}", self.model)

    async def _passthrough(self, request: web.Request) -> web.StreamResponse:
        """Everything else (GET /v1/models, llama.cpp's /props, /tokenize…) goes to the live backend."""
        path = request.path
        url = self.live_base_url + path[len("/v1") :] if path.startswith("/v1/") else self.live_root + path
        if request.query_string:
            url += "?" + request.query_string
        return await self._forward(request, url, await request.read())

    async def _forward(self, request: web.Request, url: str, raw: bytes) -> web.StreamResponse:
        """Send the request verbatim; stream the answer back as it arrives."""
        assert self._client is not None, "ForkBackend not started"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
        if self.mark_subagents and request.headers.get(AGENT_HEADER):
            headers[TURN_HEADER] = SUBAGENT_KEY
        try:
            async with self._client.request(
                request.method, url, data=raw or None, headers=headers
            ) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for name, value in upstream.headers.items():
                    if name.lower() not in HOP_HEADERS:
                        response.headers[name] = value
                await response.prepare(request)
                async for piece in upstream.content.iter_any():
                    await response.write(piece)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"fork: live backend {url} failed: {type(exc).__name__}: {exc}"
            return _openai_error(502, message)


# -- one forked run ----------------------------------------------------------------------------------------------
@dataclass
class ForkResult(TaskResult):
    """A live task record plus where the session was forked."""

    cassette: str = ""
    resume_at: int = 0
    recorded_turns: int = 0  # main-agent turns the cassette holds
    replayed_turns: int = 0  # main-agent turns answered from the recording
    live_turns: int = 0  # main-agent turns answered by the live backend
    live_requests: int = 0  # chat requests (any kind) sent to the live backend


def prepare_fork_workspace(session: RecordedSession, workspace: Path) -> None:
    """As it was recorded: the script's files in a git repository with one fixed commit, then its setup."""
    from harness.recording.runner import RecordingError, prepare_workspace

    script = session.script or SessionScript(name=session.name, prompt=session.prompt, turns=[])
    try:
        prepare_workspace(workspace, script)
    except (RecordingError, OSError) as exc:
        raise LiveError(f"cannot prepare the workspace for {session.name}: {exc}") from exc


def _cassette_responder(session: RecordedSession, workspace: str, home: str) -> Responder:
    """The reference as the *live* backend of a fork: it plays the recording too (by turn index)."""
    player = ForkBackend(session, 0, "http://127.0.0.1:9/v1", workspace=workspace, home=home)

    def respond(key: str, body: dict) -> list[dict]:
        kind = "subagent" if key == SUBAGENT_KEY and body.get("tools") else openai_classify(body)
        return player.recorded_answer(kind, assistant_turns_so_far(body), body)

    return respond


@contextlib.asynccontextmanager
async def live_backend(
    target: LiveTarget, session: RecordedSession, workspace: str, home: str
) -> AsyncIterator[str]:
    """The OpenAI base URL turns >= N go to: the user's server, or (reference) one replaying the cassette."""
    if target.preset != "reference":
        yield str(target.base_url)
        return
    from harness.reference import ReferenceBackend

    async with ReferenceBackend(responder=_cassette_responder(session, workspace, home)) as backend:
        yield backend.base_url


async def run_fork(
    session: RecordedSession,
    cassette: Path,
    resume_at: int,
    claude: Path,
    target: LiveTarget,
    timeout: float,
) -> ForkResult:
    """Run Claude Code on the cassette's task: recorded turns < resume_at, the live backend from there."""
    if target.upstream_format != "openai":
        raise LiveError("--from-cassette needs an OpenAI-format backend (not --backend anthropic)")
    task_id = f"{session.name}@{resume_at}"
    with tempfile.TemporaryDirectory(prefix=f"ccbench-fork-{session.name}-") as tmp:
        workspace, home = (Path(tmp) / "workspace").resolve(), (Path(tmp) / "home").resolve()
        workspace.mkdir()
        home.mkdir()
        await asyncio.to_thread(prepare_fork_workspace, session, workspace)
        prompt = _localise(session.prompt, str(workspace), str(home))
        seen: list[SeenRequest] = []
        started = time.perf_counter()
        async with (
            live_backend(target, session, str(workspace), str(home)) as live_url,
            ForkBackend(session, resume_at, live_url, workspace=str(workspace), home=str(home),
                        request_timeout=timeout, mark_subagents=target.preset == "reference") as fork,
        ):  # fmt: skip
            config = Config(upstream=fork.base_url, upstream_format="openai", model=target.model,
                            thinking=target.thinking, max_output_tokens=target.max_output_tokens)  # fmt: skip
            config.forward_headers = [*config.forward_headers, AGENT_HEADER]
            async with running_proxy(config, seen, label=task_id) as proxy_url:
                env = claude_env(proxy_url, home, os.environ, target.max_output_tokens)
                code, out, err = await run_claude(claude, prompt, workspace, env, timeout)
        wall = time.perf_counter() - started
        transcript = read_stream_json(out)
        if session.check is not None:
            check = await asyncio.to_thread(session.check.evaluate, workspace)
        else:
            ok = code == 0 and transcript.result == "success" and not transcript.is_error
            check = (ok, f"no outcome check; Claude Code result: {transcript.result or 'none'} (exit {code})")
        base = task_result(task_id, check, transcript, seen, code, wall, err)
        return ForkResult(
            **vars(base),
            cassette=str(cassette),
            resume_at=resume_at,
            recorded_turns=len(session.main_turns),
            replayed_turns=fork.replayed_turns,
            live_turns=fork.live_turns,
            live_requests=sum(1 for r in fork.requests if r.source == LIVE),
        )


def fork_report(
    result: ForkResult, target: LiveTarget, claude_version: str | None, timeout: float | None = None
) -> dict:
    """The usual live report (summary.tasks, summary.task_success, tasks[]) plus the fork's turn split."""
    from harness.live import live_report

    report = live_report([result], target, claude_version, timeout)
    report["summary"].update(replayed_turns=result.replayed_turns, live_turns=result.live_turns)
    report["fork"] = {
        "cassette": result.cassette,
        "resume_at": result.resume_at,
        "recorded_turns": result.recorded_turns,
    }
    return report
