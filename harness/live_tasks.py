"""Live task scenarios (scenarios/live/*.yaml): prompt, workspace files, outcome check, the reference's turns.

A task file is a session script (see harness/scripted_upstream.py: name, prompt, files, setup, turns) plus
`check`, the outcome that says Claude Code really did the work: `file` (path + contains/equals) or `command`
(run in the workspace; exit 0, optionally output_contains).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.scripted_upstream import ScriptError, SessionScript, load_script


class LiveError(Exception):
    """A usage problem (no CLI, bad task file, unknown task id): CLI exit 2."""


# -- tasks -------------------------------------------------------------------------------------------------------
@dataclass
class OutcomeCheck:
    """`file` (path + contains/equals) or `command` (run; exit 0, optionally output_contains)."""

    kind: str
    path: str | None = None
    contains: str | None = None
    equals: str | None = None
    run: str | None = None
    output_contains: str | None = None

    def evaluate(self, workspace: Path, timeout: float = 60.0) -> tuple[bool, str]:
        """(passed, what was seen) for the finished workspace."""
        if self.kind == "file":
            target = workspace / str(self.path)
            if not target.is_file():
                return False, f"{self.path} does not exist"
            text = target.read_text(encoding="utf-8", errors="replace")
            if self.equals is not None and text != self.equals:
                return False, f"{self.path} is {text[:200]!r}, expected {self.equals[:200]!r}"
            if self.contains is not None and self.contains not in text:
                return False, f"{self.path} lacks {self.contains!r}: {text[:200]!r}"
            return True, f"{self.path} ok"
        try:
            done = subprocess.run(
                str(self.run), shell=True, cwd=workspace, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return False, f"`{self.run}` timed out after {timeout:g} s"
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            return False, f"`{self.run}` exited {done.returncode}: {output[-300:]}"
        if self.output_contains is not None and self.output_contains not in output:
            return False, f"`{self.run}` output lacks {self.output_contains!r}: {output[-300:]}"
        return True, f"`{self.run}` ok"


def parse_check(raw: Any, where: str) -> OutcomeCheck:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("file", "command"):
        raise LiveError(
            f"{where}: check must be {{file: {{path, contains|equals}}}} or {{command: {{run, ...}}}}"
        )
    kind, spec = next(iter(raw.items()))
    if not isinstance(spec, dict):
        raise LiveError(f"{where}: check.{kind} must be a mapping")
    allowed = {"file": {"path", "contains", "equals"}, "command": {"run", "output_contains"}}[kind]
    unknown = set(spec) - allowed
    if unknown:
        raise LiveError(f"{where}: check.{kind} has unknown keys {sorted(unknown)}")
    required = "path" if kind == "file" else "run"
    if not isinstance(spec.get(required), str):
        raise LiveError(f"{where}: check.{kind}.{required} is required")
    return OutcomeCheck(kind, **{k: str(v) for k, v in spec.items()})


@dataclass
class LiveTask:
    id: str
    script: SessionScript  # prompt, files, setup commands, the reference's assistant turns
    check: OutcomeCheck
    tags: list[str] = field(default_factory=list)


def load_live_task(path: Path) -> LiveTask:
    try:
        script = load_script(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (ScriptError, OSError) as exc:
        raise LiveError(str(exc)) from exc
    if not script.prompt:
        raise LiveError(f"{path}: 'prompt' is required")
    if "check" not in raw:
        raise LiveError(f"{path}: 'check' is required (the task's outcome check)")
    return LiveTask(
        str(raw.get("id") or path.stem), script, parse_check(raw["check"], str(path)), raw.get("tags") or []
    )


def default_live_dir() -> Path:
    """`./scenarios/live` when it exists, else the one next to the package."""
    local = Path.cwd() / "scenarios" / "live"
    return local if local.is_dir() else Path(__file__).resolve().parent.parent / "scenarios" / "live"


def load_live_tasks(directory: Path | None = None, ids: list[str] | None = None) -> list[LiveTask]:
    folder = directory or default_live_dir()
    tasks = [load_live_task(p) for p in sorted(folder.glob("*.yaml"))]
    if not tasks:
        raise LiveError(f"no live task files (*.yaml) in {folder}")
    if ids:
        known = {t.id: t for t in tasks}
        missing = [i for i in ids if i not in known]
        if missing:
            raise LiveError(f"unknown live task(s) {', '.join(missing)}; known: {', '.join(known)}")
        tasks = [known[i] for i in ids]
    return tasks


def prepare_workspace(task: LiveTask, workspace: Path) -> None:
    """Create the task's files and run its setup commands (e.g. `git init`)."""
    for name, text in task.script.files.items():
        target = workspace / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for command in task.script.setup:
        subprocess.run(command, shell=True, cwd=workspace, check=True, capture_output=True, timeout=60)
