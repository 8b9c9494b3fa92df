"""Profile the running proxy under load with py-spy and summarise where its CPU time goes."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def short_frame(frame: str) -> str:
    """`function (path/to/module.py:12)` -> `module.py:function` (line numbers dropped to aggregate)."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{Path(match['file']).name}:{match['function']}"


def summarize_collapsed(text: str, top: int = 20) -> dict:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed stack) output."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short_frame(frame) for frame in stack.split(";") if frame.strip()]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def shares(counter: Counter[str]) -> list[dict]:
        return [{"function": name, "pct": round(100 * n / total, 1)} for name, n in counter.most_common(top)]

    # the entry chain (main, run_forever, ...) is in nearly every stack and says nothing: leave it out
    root = max(inclusive.values(), default=0)
    for name in [name for name, n in inclusive.items() if n >= 0.98 * root]:
        del inclusive[name]
    return {"samples": total, "self": shares(self_counts), "inclusive": shares(inclusive)}


def start_py_spy(pid: int, raw_out: Path, rate: int = 200) -> subprocess.Popen | None:
    """py-spy record in raw (collapsed) format, non-blocking so the proxy is not paused; None if absent."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        return None
    command = [py_spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--nonblocking"]
    process = subprocess.Popen(
        [*command, "--output", str(raw_out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.0)  # let py-spy attach before the load starts
    return process


def stop_py_spy(process: subprocess.Popen, timeout: float = 30.0) -> str:
    """Stop the recorder (it writes its file on SIGINT); return its stderr for diagnostics."""
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate(timeout=timeout)
    return stderr or ""
