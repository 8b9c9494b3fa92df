"""A scripted Anthropic-format server: plays chosen assistant turns as real Anthropic responses.

The recorder needs an upstream that answers Claude Code deterministically, so that the recorded tool calls are
the ones we chose and Claude Code really executes them. The turn to play is derived from the conversation
itself (the number of assistant messages so far), so a retried request gets the same answer, and side
requests (titles, topic detection, quota probes) never consume a scripted turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.cassette import request_class
from proxy.datafile import load_yaml_file
from proxy.errors import error_body, new_request_id
from proxy.sse import encode_event

WORKSPACE_PLACEHOLDER = "/workspace/project"
SIDE_REPLY = "OK"
FALLBACK_REPLY = "Done."


class ScriptError(ValueError):
    """A session script that cannot be played; the message names the file and the problem."""


@dataclass
class SessionScript:
    """A session: the task prompt, the workspace files, and the assistant turns to play."""

    name: str
    prompt: str
    turns: list[list[dict]]
    subagent_turns: list[list[dict]] = field(default_factory=list)
    description: str = ""
    files: dict[str, str] = field(default_factory=dict)
    side_reply: str = SIDE_REPLY
    expect_main_turns: int | None = None  # main requests the recorded cassette must hold (default len(turns))
    setup: list[str] = field(default_factory=list)  # shell commands run in the workspace before recording
    # extra environment for Claude Code (None unsets a variable)
    env: dict[str, str | None] = field(default_factory=dict)

    @property
    def main_turns(self) -> int:
        return self.expect_main_turns if self.expect_main_turns is not None else len(self.turns)


BLOCK_TYPES = {"text", "tool_use", "thinking"}


def _check_turns(turns: Any, where: str) -> list[list[dict]]:
    if not isinstance(turns, list):
        raise ScriptError(f"{where}: must be a list of turns")
    for i, turn in enumerate(turns):
        if not isinstance(turn, list) or not turn:
            raise ScriptError(f"{where}[{i}]: a turn is a non-empty list of content blocks")
        for j, block in enumerate(turn):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in BLOCK_TYPES:
                raise ScriptError(f"{where}[{i}][{j}]: block type must be one of {sorted(BLOCK_TYPES)}")
            if kind == "tool_use" and not (
                isinstance(block.get("name"), str) and isinstance(block.get("input"), dict)
            ):
                raise ScriptError(f"{where}[{i}][{j}]: tool_use needs a 'name' string and an 'input' mapping")
            if kind == "text" and not isinstance(block.get("text"), str):
                raise ScriptError(f"{where}[{i}][{j}]: text block needs a 'text' string")
            if kind == "thinking" and not isinstance(block.get("thinking"), str):
                raise ScriptError(f"{where}[{i}][{j}]: thinking block needs a 'thinking' string")
    return turns


def load_script(path: Path | str) -> SessionScript:
    """Read a session script (YAML or JSON)."""
    source = Path(path)
    data = load_yaml_file(source, "session script", ScriptError)
    if not isinstance(data, dict):
        raise ScriptError(f"session script {source}: top level must be a mapping")
    if "turns" not in data:
        raise ScriptError(f"session script {source}: missing 'turns'")
    files = data.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ScriptError(f"session script {source}: 'files' must map file names to text")
    env = data.get("env") or {}
    if not isinstance(env, dict):
        raise ScriptError(f"session script {source}: 'env' must map variable names to strings (or null)")
    return SessionScript(
        name=str(data.get("name") or source.stem),
        prompt=str(data.get("prompt") or ""),
        turns=_check_turns(data["turns"], f"{source}: turns"),
        subagent_turns=_check_turns(data.get("subagent_turns") or [], f"{source}: subagent_turns"),
        description=str(data.get("description") or ""),
        files=files,
        side_reply=str(data.get("side_reply") or SIDE_REPLY),
        expect_main_turns=data.get("expect_main_turns"),
        setup=list(data.get("setup") or []),
        env={str(k): None if v is None else str(v) for k, v in env.items()},
    )


def _replace_workspace(value: Any, workspace: str | None) -> Any:
    """Scripts name files under /workspace/project; the real session runs in a temp dir."""
    if workspace is None:
        return value
    if isinstance(value, str):
        return value.replace(WORKSPACE_PLACEHOLDER, workspace)
    if isinstance(value, list):
        return [_replace_workspace(v, workspace) for v in value]
    if isinstance(value, dict):
        return {k: _replace_workspace(v, workspace) for k, v in value.items()}
    return value


def estimate_tokens(body: dict) -> int:
    """A rough count (4 characters a token) for count_tokens and usage; exactness does not matter here."""
    return max(1, len(json.dumps(body, ensure_ascii=False)) // 4)


def play_role(headers: dict[str, str], body: dict) -> str:
    """Which turn list answers a /v1/messages request: main, subagent or auxiliary (headers lower-cased)."""
    kind = request_class("/v1/messages", headers, body)
    if kind in ("main", "subagent"):
        return kind
    return "subagent" if "agent" in kind else "auxiliary"


def assistant_turns_so_far(body: dict) -> int:
    return sum(1 for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant")


def _tool_id() -> str:
    return "toolu_01" + secrets.token_hex(11)


def build_content(turn: list[dict], workspace: str | None) -> list[dict]:
    """Script blocks -> Anthropic content blocks (ids and signatures added)."""
    content: list[dict] = []
    for block in turn:
        if block["type"] == "text":
            content.append({"type": "text", "text": _replace_workspace(block["text"], workspace)})
        elif block["type"] == "thinking":
            signature = hashlib.sha256(block["thinking"].encode()).hexdigest()  # stable across re-recordings
            content.append({"type": "thinking", "thinking": block["thinking"], "signature": signature})
        else:
            content.append(
                {
                    "type": "tool_use",
                    "id": _tool_id(),
                    "name": block["name"],
                    "input": _replace_workspace(block["input"], workspace),
                }
            )
    return content


def build_message(content: list[dict], model: str, input_tokens: int) -> dict:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    output_tokens = max(1, len(json.dumps(content, ensure_ascii=False)) // 4)
    return {
        "id": "msg_01" + secrets.token_hex(11),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


_PIECES = re.compile(r"\s+|[^\s,:{}\[\]]+|.")


def _chunks(text: str, size: int) -> list[str]:
    """Cut text into fragments of about `size` characters, never inside a word or a path.

    Whole words keep paths and ids in one fragment, so the recorder's normalisation can still find them.
    """
    out: list[str] = []
    for piece in _PIECES.findall(text):
        if out and len(out[-1]) + len(piece) <= size:
            out[-1] += piece
        else:
            out.append(piece)
    return out or [""]


def message_events(message: dict, chunk_chars: int = 12) -> list[dict]:
    """The Anthropic event sequence that streams `message` (deltas cut into small fragments)."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    events: list[dict] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            deltas = [{"type": "text_delta", "text": part} for part in _chunks(block["text"], chunk_chars)]
        elif block["type"] == "thinking":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                }
            )
            deltas = [
                {"type": "thinking_delta", "thinking": p} for p in _chunks(block["thinking"], chunk_chars)
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": block["id"],
                        "name": block["name"],
                        "input": {},
                    },
                }
            )
            raw = json.dumps(block["input"], ensure_ascii=False)
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in ["", *_chunks(raw, chunk_chars)]
            ]
        events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        }
    )
    events.append({"type": "message_stop"})
    return events


@dataclass
class ScriptedUpstream:
    """Chooses the answer for each request; pure apart from random ids."""

    script: SessionScript
    workspace: str | None = None
    log: list[dict] = field(default_factory=list)  # (class, turn index) per /v1/messages request, for checks

    def answer(self, headers: dict[str, str], body: dict) -> dict:
        """The assistant Message for one /v1/messages request."""
        role = play_role(headers, body)
        model = str(body.get("model") or "claude-scripted")
        input_tokens = estimate_tokens(body)
        index = assistant_turns_so_far(body)
        if role == "auxiliary":
            turn: list[dict] = [{"type": "text", "text": self.script.side_reply}]
        else:
            turns = self.script.subagent_turns if role == "subagent" else self.script.turns
            turn = turns[index] if index < len(turns) else [{"type": "text", "text": FALLBACK_REPLY}]
        self.log.append({"class": role, "turn": index})
        return build_message(build_content(turn, self.workspace), model, input_tokens)


async def _read_json(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps(error_body("invalid_request_error", "body must be a JSON object")),
            content_type="application/json",
        )
    return body


def build_scripted_app(upstream: ScriptedUpstream, event_delay_s: float = 0.002) -> web.Application:
    """The aiohttp app: /v1/messages (stream and not), count_tokens, models, and a catch-all."""

    async def messages(request: web.Request) -> web.StreamResponse:
        body = await _read_json(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        message = upstream.answer(headers, body)
        request_id = new_request_id()
        if not body.get("stream"):
            return web.json_response(message, headers={"request-id": request_id})
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "request-id": request_id,
            }
        )
        await response.prepare(request)
        for event in message_events(message):
            await response.write(encode_event(event))
            if event_delay_s:
                await asyncio.sleep(event_delay_s)
        await response.write_eof()
        return response

    async def count_tokens(request: web.Request) -> web.Response:
        body = await _read_json(request)
        return web.json_response(
            {"input_tokens": estimate_tokens(body)}, headers={"request-id": new_request_id()}
        )

    async def models(request: web.Request) -> web.Response:
        data = [
            {
                "type": "model",
                "id": "claude-scripted",
                "display_name": "Scripted",
                "created_at": "2026-01-01T00:00:00Z",
            }
        ]
        return web.json_response(
            {"data": data, "has_more": False, "first_id": "claude-scripted", "last_id": "claude-scripted"}
        )

    async def other(request: web.Request) -> web.Response:
        if request.path in ("/", "/health", "/api/hello"):
            return web.json_response({"status": "ok"})
        return web.json_response(error_body("not_found_error", f"no route for {request.path}"), status=404)

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


async def _serve(script: SessionScript, host: str, port: int, workspace: str | None) -> None:
    from harness.recorder import start_site, wait_for_stop_signal

    runner, bound = await start_site(build_scripted_app(ScriptedUpstream(script, workspace)), host, port)
    print(
        f"Scripted upstream playing {script.name} ({len(script.turns)} turns) on http://{host}:{bound}",
        flush=True,
    )
    try:
        await wait_for_stop_signal()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """`python -m harness.scripted_upstream SCRIPT [--port 8082]`: serve a session script until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.scripted_upstream", description=main.__doc__)
    parser.add_argument("script", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--workspace", help="real directory that /workspace/project in the script stands for")
    args = parser.parse_args(argv)
    try:
        script = load_script(args.script)
    except ScriptError as exc:
        parser.exit(2, f"error: {exc}\n")
    try:
        asyncio.run(_serve(script, args.host, args.port, args.workspace))
    except OSError as exc:
        parser.exit(2, f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")


if __name__ == "__main__":
    main()
