"""Reading members of parsed JSON whose type the client or backend chose."""

from __future__ import annotations


def object_member(mapping: dict, key: str) -> dict:
    """`mapping[key]` when it is a JSON object, else an empty one (absent, null, or any other type)."""
    value = mapping.get(key)
    return value if isinstance(value, dict) else {}
