"""The real Claude Code CLI: where it is installed, the clean environment it runs in, running it headless, and
what its stream-json output says about the session. Shared by `ccbench live`, its forked sessions and
`ccbench record`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from harness.live_tasks import LiveError

CLAUDE_BIN_ENV = "CCBENCH_CLAUDE_BIN"
CLAUDE_BIN_ENVS = (
    CLAUDE_BIN_ENV,
    "CLAUDE_BIN",
)  # in this order: ccbench's own name wins over the generic one
CLAUDE_NATIVE = Path("node_modules/@anthropic-ai/claude-code-linux-x64/claude")
CLAUDE_INSTALL_HINT = (
    "Claude Code CLI not found; install it with: npm install @anthropic-ai/claude-code "
    f"(or set {CLAUDE_BIN_ENV}, or pass --claude PATH)"
)
# the --claude help of `live`, `record` and the re-recording script: where find_claude looks, in order
CLAUDE_OPTION_HELP = (
    "Claude Code binary (default: $CCBENCH_CLAUDE_BIN, then $CLAUDE_BIN, then `claude` on PATH, then known "
    "node_modules folders)."
)
FAKE_API_KEY = "sk-ant-local-fake"


# -- finding the CLI ---------------------------------------------------------------------------------------------
def claude_search_paths(environ: Mapping[str, str]) -> list[Path]:
    """Where find_claude looks, in order, after the environment variables and PATH."""
    home = Path(environ.get("HOME") or Path.home())
    roots = [
        Path.cwd() / ".ci" / "node",
        home / ".cache" / "ccbench-node",
        Path.cwd(),
        Path("/opt/ccbench-npm"),
        home / ".npm-global" / "lib",
        Path("/usr/local/lib"),
        Path("/usr/lib"),
    ]
    return [root / CLAUDE_NATIVE for root in roots]


def find_claude(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """--claude, then $CCBENCH_CLAUDE_BIN, then $CLAUDE_BIN, then `claude` on PATH, then known node_modules
    locations: the one lookup of `ccbench live` and `ccbench record --script`, so both find the same binary."""
    env = os.environ if environ is None else environ
    for candidate in (explicit, *(env.get(name) for name in CLAUDE_BIN_ENVS)):
        if candidate:
            path = Path(candidate).expanduser()
            if path.is_file() and os.access(path, os.X_OK):
                return path
            raise LiveError(f"Claude Code CLI {path} is not an executable file")
    on_path = shutil.which("claude", path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    return next((p for p in claude_search_paths(env) if p.is_file() and os.access(p, os.X_OK)), None)


# -- running Claude Code -----------------------------------------------------------------------------------------
@dataclass
class ClaudeTranscript:
    """What Claude Code's stream-json output says about the session."""

    turns: int = 0  # the result's num_turns (or assistant messages seen)
    tool_calls: int = 0
    tool_errors: int = 0  # tool_result blocks with is_error: what Claude Code saw fail
    api_errors: int = 0  # retries / API errors Claude Code reported
    result: str | None = None  # result subtype: success, error_max_turns, error_during_execution…
    is_error: bool | None = None
    final_text: str = ""


def read_stream_json(text: str) -> ClaudeTranscript:
    """Parse `claude -p --output-format stream-json --verbose` output (one JSON object per line)."""
    out = ClaudeTranscript()
    message_ids: set[str] = set()
    for line in text.splitlines():
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        content = message.get("content") if isinstance(message.get("content"), list) else []
        if kind == "assistant":
            message_ids.add(str(message.get("id")))
            out.tool_calls += sum(1 for b in content if isinstance(b, dict) and b.get("type") == "tool_use")
        elif kind == "user":
            out.tool_errors += sum(
                1
                for b in content
                if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("is_error")
            )
        elif kind == "system" and (
            "retry" in str(event.get("subtype")) or "error" in str(event.get("subtype"))
        ):
            out.api_errors += 1
        elif kind == "result":
            out.turns = int(event.get("num_turns") or 0)
            out.result = event.get("subtype")
            out.is_error = bool(event.get("is_error"))
            out.final_text = str(event.get("result") or "")
            if event.get("api_error_status"):
                out.api_errors += 1
    out.turns = out.turns or len(message_ids)
    return out


def claude_env(
    base_url: str, home: Path, environ: Mapping[str, str], max_output_tokens: int | None = None
) -> dict[str, str]:
    """A clean environment: the proxy as the API, a throwaway HOME, nothing phoning home; with the proxy's
    output cap, Claude Code asks for that much (CLAUDE_CODE_MAX_OUTPUT_TOKENS), as a user would set it."""
    env = {k: environ[k] for k in ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR") if k in environ}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=FAKE_API_KEY,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
    )
    if max_output_tokens is not None:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(max_output_tokens)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"  # lets --dangerously-skip-permissions run as root
    return env


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Claude Code runs in its own session; kill it with the shells and tools it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_claude(
    claude: Path, prompt: str, workspace: Path, env: dict[str, str], timeout: float
) -> tuple[int | None, str, str]:
    """(exit code or None on timeout, stdout, stderr tail)."""
    command = [
        str(claude),
        "-p",
        prompt,
        "--dangerously-skip-permissions",
        "--output-format",
        "stream-json",
        "--verbose",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workspace, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
        code: int | None = process.returncode
    except TimeoutError:
        _kill_group(process)
        out, err = await process.communicate()
        code = None
    finally:
        if process.returncode is None:  # cancelled (Ctrl-C): leave no Claude Code or tool process behind
            _kill_group(process)
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")[-2000:]
