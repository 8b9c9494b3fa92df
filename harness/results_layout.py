"""Where count_tokens calls live in a results file, and how files of the earlier layout are read.

`scenarios[].turns[]` holds the messages turns only: exactly what `summary.turns` counts and what the summary's
rates and percentiles are computed from, so a checker written from DESIGN section 5 alone agrees with the
summary. count_tokens calls go to `scenarios[].count_tokens[]`.

Files written before (same schema_version 1, which users keep as committed baselines) held the calls inside
`turns[]` as entries with `"kind": "count_tokens"`. `upgrade_layout` moves them to the list, keeping the
fields a call has; every loader applies it before checking the JSON Schema, which describes the current
layout only (so a writer regression that puts a call back into `turns[]` breaks the contract tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

COUNT_TOKENS = "count_tokens"

# The fields of a count_tokens[] entry (a messages turn's stream, tools, TTFT and output make no sense there).
COUNT_TOKENS_FIELDS: tuple[str, ...] = (
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


def is_legacy_call(entry: object) -> bool:
    """A turns[] entry of the earlier layout that is really a count_tokens call."""
    return isinstance(entry, Mapping) and entry.get("kind") == COUNT_TOKENS


def as_count_tokens_call(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An earlier-layout entry reduced to the fields of a count_tokens[] entry."""
    return {key: entry[key] for key in COUNT_TOKENS_FIELDS if key in entry}


def upgrade_layout(data: Any) -> Any:
    """The results object in the current layout (a new object; the input is left alone).

    Every scenario gets a `count_tokens` list: the calls found in its turns[] appended to the list it already
    has (or an empty one). Anything that is not the expected shape is passed through untouched so the
    contract check names the defect."""
    if not isinstance(data, Mapping) or not isinstance(data.get("scenarios"), list):
        return data
    return {**data, "scenarios": [_upgrade_scenario(item) for item in data["scenarios"]]}


def _upgrade_scenario(item: Any) -> Any:
    if not isinstance(item, Mapping) or not isinstance(item.get("turns"), list):
        return item
    calls = item.get(COUNT_TOKENS, [])
    if not isinstance(calls, list):
        return item
    turns = item["turns"]
    moved = [as_count_tokens_call(t) for t in turns if is_legacy_call(t)]
    return {
        **item,
        "turns": [t for t in turns if not is_legacy_call(t)],
        COUNT_TOKENS: [*calls, *moved],
    }


def request_order(turns: Iterable[Any], calls: Iterable[Any]) -> list[Any]:
    """Messages turns and count_tokens calls in one list, as the run sent them: each call right after the last
    entry of its repeat and turn index (or of an earlier one); the turns keep their own order. The first
    failure of a scenario is taken in this order, as it was when both lived in one list."""
    merged = list(turns)
    for call in calls:
        key = _key(call)
        position = next((i + 1 for i in range(len(merged) - 1, -1, -1) if _key(merged[i]) <= key), 0)
        merged.insert(position, call)
    return merged


def _key(entry: Any) -> tuple[int, int]:
    return _field(entry, "repeat"), _field(entry, "index")


def _field(entry: Any, name: str) -> int:
    value = entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
