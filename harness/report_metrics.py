"""The numbers the reports show and the gate judges: their labels, their direction, and where each lives in a
results file (`summary` and `summary.per_repeat[]`), in one place for the terminal, Markdown, HTML and the gate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """One reported number: where it lives in a results file and which direction is better."""

    key: str
    label: str
    kind: str  # "rate" | "ms" | "tps" | "count"
    higher_is_better: bool


COMPARE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("schema_validity", "Schema validity", "rate", True),
    MetricSpec("tool_call_success", "Tool-call success", "rate", True),
    MetricSpec("spurious_tool_calls", "Spurious tool calls", "rate", False),
    MetricSpec("count_tokens_validity", "count_tokens validity", "rate", True),
    MetricSpec("ttft_p50", "TTFT p50", "ms", False),
    MetricSpec("ttft_p95", "TTFT p95", "ms", False),
    MetricSpec("latency_p50", "Latency p50", "ms", False),
    MetricSpec("latency_p95", "Latency p95", "ms", False),
    MetricSpec("output_tokens_per_s", "Output tok/s", "tps", True),
    MetricSpec("errors_per_run", "Errors per run", "count", False),
)

# summary path -> metric key; nested paths are (parent, child).
SUMMARY_PATHS: dict[str, tuple[str, ...]] = {
    "schema_validity": ("schema_validity",),
    "tool_call_success": ("tool_call_success",),
    "spurious_tool_calls": ("spurious_tool_calls",),
    "count_tokens_validity": ("count_tokens_validity",),
    "ttft_p50": ("ttft_ms", "p50"),
    "ttft_p95": ("ttft_ms", "p95"),
    "latency_p50": ("latency_ms", "p50"),
    "latency_p95": ("latency_ms", "p95"),
    "output_tokens_per_s": ("output_tokens_per_s",),
    "errors": ("errors",),
    "scenario_pass_rate": ("scenario_pass_rate",),
    "pass_hat_k": ("pass_hat_k",),
}

# summary.per_repeat[] key -> metric key (the names differ in the results file).
PER_REPEAT_KEYS: dict[str, str] = {
    "schema_validity": "schema_validity",
    "tool_call_success": "tool_call_success",
    "ttft_ms_p95": "ttft_p95",
    "latency_ms_p95": "latency_p95",
    "errors": "errors",
    "scenario_pass_rate": "scenario_pass_rate",
}
