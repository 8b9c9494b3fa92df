"""Shared test data: the real Claude Code 2.1.328 requests captured in scenarios/data (API key redacted).

The same files back the `claude-code` suite's captured scenarios, so tests and runs read one copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "scenarios" / "data"
CLAUDE_CODE_DIR = DATA_DIR / "claude-code-2.1.328"


@dataclass
class CapturedRequest:
    scenario: str  # e.g. "s1_edit"
    seq: int
    method: str
    path: str  # includes the query, e.g. /v1/messages?beta=true
    headers: dict[str, str]
    body: dict

    @property
    def id(self) -> str:
        return f"{self.scenario}-{self.seq}"


def captured_requests() -> list[CapturedRequest]:
    """Every request Claude Code sent in the captured sessions, in order."""
    out: list[CapturedRequest] = []
    for path in sorted(CLAUDE_CODE_DIR.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                obj = json.loads(line)
                out.append(
                    CapturedRequest(
                        path.stem, obj["seq"], obj["method"], obj["path"], obj["headers"], obj["body"]
                    )
                )
    return out


def scripted_turns(scenario: str) -> list[list[dict]]:
    """The assistant turns (Anthropic content blocks, without ids) that answered a captured session."""
    return json.loads((CLAUDE_CODE_DIR / f"{scenario}.turns.json").read_text())["turns"]


def assert_process_gone(pid: int, what: str, timeout: float = 5.0) -> None:
    """Fail unless process `pid` ends within `timeout` seconds (e.g. a Claude Code killed with its group)."""
    import os
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} (pid {pid}) is still running")


# The fields of a results file's count_tokens[] entry, written out here (not imported from harness) so that the
# tests pin the contract instead of repeating whatever the code does.
COUNT_TOKENS_CALL_FIELDS = (
    "index",
    "repeat",
    "schema_valid",
    "problems",
    "latency_ms",
    "passed",
    "failure_class",
    "error",
    "input_tokens",
    "backend_prompt_tokens",
    "count_tokens_error",
)
