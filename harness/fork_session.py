"""What a forked session needs from its cassette: the typed prompt, the recorded assistant turns by turn index
(main agent, subagents, side requests), and the session script and outcome check it was recorded with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.cassette import Cassette, CassetteError, load_cassette
from harness.live_tasks import LiveError, OutcomeCheck, parse_check
from harness.scripted_upstream import ScriptError, SessionScript, assistant_turns_so_far, load_script

SESSIONS_DIR = Path(__file__).resolve().parent / "recording" / "sessions"
PLAYABLE = {"text", "tool_use", "thinking"}


@dataclass
class RecordedSession:
    """The parts of a cassette a fork needs: the task, the recorded turns, and the workspace it ran in."""

    name: str
    prompt: str
    main_turns: list[list[dict]]  # by turn index (= assistant messages in the request)
    subagent_turns: dict[int, list[dict]] = field(default_factory=dict)
    side_replies: dict[int, list[dict]] = field(default_factory=dict)  # auxiliary answers by turn index
    script: SessionScript | None = None  # harness/recording/sessions/<name>.yaml, when present
    check: OutcomeCheck | None = None  # the script's optional `check:` (same shape as a live task's)


def _user_prompt(body: dict) -> str:
    """The typed prompt: the first user message's text, without Claude Code's <system-reminder> blocks."""
    first = next(
        (m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"), None
    )
    content = (first or {}).get("content")
    if isinstance(content, str):
        return content.strip()
    texts = [
        str(b.get("text", ""))
        for b in content or []
        if isinstance(b, dict) and b.get("type") == "text"
        and not str(b.get("text", "")).lstrip().startswith("<system-reminder>")
    ]  # fmt: skip
    return "\n".join(t for t in texts if t.strip()).strip()


def _playable(content: list[Any]) -> list[dict]:
    return [b for b in content if isinstance(b, dict) and b.get("type") in PLAYABLE]


def recorded_session(cassette: Cassette, sessions_dir: Path = SESSIONS_DIR) -> RecordedSession:
    """Read the fork's material from a loaded cassette; CassetteError when it has no main turns or prompt."""
    main: dict[int, list[dict]] = {}
    subagent: dict[int, list[dict]] = {}
    side: dict[int, list[dict]] = {}
    prompt = ""
    for inter in cassette.interactions:
        if inter.path != "/v1/messages" or inter.status != 200 or inter.request_body is None:
            continue
        kind = str(inter.meta.get("request_class") or "main")
        index = assistant_turns_so_far(inter.request_body)
        if kind == "main" and not prompt:
            prompt = _user_prompt(inter.request_body)
        target = main if kind == "main" else subagent if "agent" in kind else side
        target[index] = _playable(list(inter.response_message().get("content") or []))
    if not main:
        raise CassetteError(f"cassette {cassette.path} has no answered main-agent /v1/messages turns")
    missing = [i for i in range(max(main) + 1) if i not in main]
    if missing:
        raise CassetteError(f"cassette {cassette.path}: main-agent turn(s) {missing} are missing")
    if not prompt:
        raise CassetteError(f"cassette {cassette.path}: the first main request has no user prompt")
    name = cassette.path.stem
    script, check = None, None
    script_file = sessions_dir / f"{name}.yaml"
    if script_file.is_file():
        try:
            script = load_script(script_file)
            raw = yaml.safe_load(script_file.read_text(encoding="utf-8")) or {}
        except (ScriptError, OSError, yaml.YAMLError) as exc:
            raise CassetteError(f"session script {script_file}: {exc}") from exc
        if isinstance(raw, dict) and "check" in raw:
            try:
                check = parse_check(raw["check"], str(script_file))
            except LiveError as exc:
                raise CassetteError(str(exc)) from exc
    return RecordedSession(
        name=name,
        prompt=prompt,
        main_turns=[main[i] for i in range(len(main))],
        subagent_turns=subagent,
        side_replies=side,
        script=script,
        check=check,
    )


def load_fork(path: Path, resume_at: int, sessions_dir: Path = SESSIONS_DIR) -> RecordedSession:
    """The cassette at `path`, checked against --resume-at; every problem is a LiveError (CLI exit 2)."""
    if resume_at < 0:
        raise LiveError(f"--resume-at must be 0 or more, got {resume_at}")
    try:
        session = recorded_session(load_cassette(path), sessions_dir)
    except CassetteError as exc:
        raise LiveError(str(exc)) from None
    recorded = len(session.main_turns)
    if resume_at > recorded:
        raise LiveError(
            f"--resume-at {resume_at} is beyond the recording: {path} has {recorded} recorded main-agent "
            f"turn{'s' if recorded != 1 else ''} (use 0..{recorded})"
        )
    return session
