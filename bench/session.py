"""A long Claude Code session for the benchmark: a captured turn grown with the Read calls and line-numbered
results that make up most of a real session's history.

Claude Code resends the whole conversation every turn, so the proxy parses, translates, serialises and estimates
every earlier message again on each one. The captured turns have 2 to 8 messages; this measures what a turn costs
late in a session, where the proxy's per-message work (and its memos) decide.
"""

from __future__ import annotations

import copy

import orjson

# Lines of the files the session "reads" (the results are `cat -n` style, as Claude Code's Read returns them).
CODE_LINES = (
    "from __future__ import annotations",
    "",
    "import asyncio",
    "def load_config(path: Path) -> dict[str, str]:",
    '    """Read the settings file, falling back to the defaults."""',
    "    if not path.exists():",
    "        return dict(DEFAULTS)",
    "    with path.open() as handle:",
    "        return {**DEFAULTS, **json.load(handle)}",
    "class RetryPolicy:",
    "    def __init__(self, attempts: int = 3, backoff: float = 0.5) -> None:",
    "        self.attempts, self.backoff = attempts, backoff",
    "    async def run(self, call):",
    "        for attempt in range(self.attempts):",
    "            try:",
    "                return await call()",
    "            except ConnectionError:",
    "                await asyncio.sleep(self.backoff * 2**attempt)",
    "        raise RuntimeError('gave up')",
)


def read_result(index: int) -> str:
    """The numbered lines of the index-th file read: 4 to 26 lines, ~550 bytes on average."""
    count = 4 + (index * 7) % 23
    lines = [CODE_LINES[(index + n) % len(CODE_LINES)] for n in range(count)]
    return "".join(f"{n + 1:6}\t{line}\n" for n, line in enumerate(lines))


def read_pair(index: int) -> list[dict]:
    """An assistant turn calling Read, and the user turn carrying its result."""
    call_id = f"toolu_01{index:022d}"
    call = {
        "type": "tool_use",
        "id": call_id,
        "name": "Read",
        "input": {"file_path": f"/workspace/project/src/module_{index}.py"},
    }
    result = {"tool_use_id": call_id, "type": "tool_result", "content": read_result(index)}
    return [{"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]


def grown_turns(row: dict, messages: int, turns: int = 3) -> list[dict]:
    """`turns` successive turns of one session whose last has at least `messages` messages: the captured turn
    (which must end with a user message) followed by Read calls and results, two messages per turn apart."""
    base = row["body"]["messages"]
    if base[-1]["role"] != "user":
        raise ValueError("the captured turn must end with a user message")
    pairs = max(0, (messages - len(base) + 1) // 2)
    history = copy.deepcopy(base) + [m for index in range(pairs) for m in read_pair(index)]
    grown = []
    for turn in range(turns):
        cut = len(history) - 2 * (turns - 1 - turn)
        grown.append({**row, "body": {**row["body"], "messages": history[: max(cut, len(base))]}})
    return grown


def describe(rows: list[dict]) -> str:
    """`310 messages, 171 KB` for the longest of the turns."""
    longest = max(rows, key=lambda row: len(row["body"]["messages"]))
    size = len(orjson.dumps(longest["body"]))
    return f"{len(longest['body']['messages'])} messages, {size / 1024:.0f} KB"
