"""The table `ccbench run` prints at its end, with the notes that keep its numbers from reading like bugs.

Two figures look wrong without context: TTFT p50 above latency p50 (TTFT is taken over streaming turns only,
latency over every answered turn, so the sets differ), and a non-zero count_tokens error on the reference run,
which must score 1.0 (the reference backend counts words, not tokens, and the error is not scored). The row
labels give the sample sizes and the notes under the table say the rest.
"""

from __future__ import annotations

from rich.table import Table

from harness.scoring import speed_samples


def _fmt(value: object, kind: str = "rate") -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:.0f} ms"
    return f"{value:.1f}"


def _samples(results: dict) -> tuple[int, int]:
    """How many turns the TTFT and the latency percentiles were taken over."""
    messages = [t for s in results["scenarios"] for t in s["turns"]]
    ttfts, latencies = speed_samples(messages)
    return len(ttfts), len(latencies)


def _turns(n: int, kind: str = "") -> str:
    return f"{n} {kind}{'turn' if n == 1 else 'turns'}"


def summary_table(results: dict) -> Table:
    """The end-of-run table: one row per metric; the percentile rows name the turns they cover."""
    s = results["summary"]
    n_ttft, n_latency = _samples(results)
    table = Table(title="ccbench run", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right", overflow="fold")
    rows = [
        ("backend", f"{results['backend']['preset']} {results['backend']['base_url']}"),
        ("model", results["model"]),
        ("scenarios / turns / errors", f"{s['scenarios']} / {s['turns']} / {s['errors']}"),
        ("schema validity", _fmt(s["schema_validity"])),
        ("tool-call success", _fmt(s["tool_call_success"])),
        ("spurious tool calls", _fmt(s.get("spurious_tool_calls"))),
        ("count_tokens validity", _fmt(s["count_tokens_validity"])),
        ("count_tokens error (not scored)", _fmt(s.get("count_tokens_error"))),
        (
            f"TTFT p50 / p95 ({_turns(n_ttft, 'streaming ')})",
            f"{_fmt(s['ttft_ms']['p50'], 'ms')} / {_fmt(s['ttft_ms']['p95'], 'ms')}",
        ),
        (
            f"latency p50 / p95 ({_turns(n_latency)})",
            f"{_fmt(s['latency_ms']['p50'], 'ms')} / {_fmt(s['latency_ms']['p95'], 'ms')}",
        ),
        ("output tokens/s", _fmt(s["output_tokens_per_s"], "n")),
        ("scenario pass rate", _fmt(s.get("scenario_pass_rate"))),
        (f"pass^{s.get('repeats', 1)}", _fmt(s.get("pass_hat_k"))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    failures = {k: v for k, v in (s.get("failure_classes") or {}).items() if v}
    if failures:
        table.add_row("failures", ", ".join(f"{k} {v}" for k, v in failures.items()))
    return table


def summary_notes(results: dict) -> list[str]:
    """The lines under the table that explain the figures which would otherwise read like bugs."""
    s = results["summary"]
    notes = []
    ttft, latency = s["ttft_ms"]["p50"], s["latency_ms"]["p50"]
    n_ttft, n_latency = _samples(results)
    if ttft is not None and latency is not None and n_ttft < n_latency:
        notes.append(
            f"TTFT is taken over the {_turns(n_ttft, 'streaming ')} answered, latency over all {_turns(n_latency)} "
            "answered (non-streaming ones too), so TTFT p50 can exceed latency p50."
        )
    if s.get("count_tokens_error") is not None:
        note = (
            "count_tokens error: how far ccbench's count_tokens answer is from the prompt tokens the backend "
            "reported for the same request (informative, not scored)"
        )
        if results["backend"]["preset"] == "reference":
            note += "; the reference backend counts words and punctuation, not tokens, so it is not 0 here"
        notes.append(note + ".")
    return notes
