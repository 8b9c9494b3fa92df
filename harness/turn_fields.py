"""Fields of a results turn the report views derive when a file lacks them or holds them in a loose form (kept
out of harness/report_data.py, which reads the rest of the file). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def derive_failure_class(raw: Mapping[str, Any], error: object, tool_calls: list) -> str:
    """Classify a failing turn from contract-only fields (files written before failure_class existed)."""
    if error:
        return "backend_error"
    if raw.get("schema_valid") is False:
        return "proxy_protocol"
    if raw.get("spurious_tool_call") is True:
        return "model_spurious_tool"
    if raw.get("tool_call_success") is False:
        if not tool_calls:
            return "model_no_tool"
        offered_ok = all(call.get("valid", True) for call in tool_calls)
        return "model_wrong_tool" if offered_ok else "model_bad_arguments"
    return "model_other"


def token_count(value: object) -> int | None:
    """A token count (output_tokens) or None: booleans and negative numbers are not counts."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
