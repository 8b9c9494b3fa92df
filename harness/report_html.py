"""The self-contained HTML report: one file, inline CSS and SVG, no script, font or image from anywhere.

Many users run offline, and the file is attached to CI runs, so nothing may be fetched when it opens.
Everything taken from results files (model names, problems, tool inputs) is untrusted and escaped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape

from harness.diagnosis import diagnose
from harness.gate import GateResult
from harness.report_data import RunView, ScenarioView, TurnView
from harness.report_labels import (
    best_rows,
    comparability_notes,
    format_value,
    model_names,
    scenario_ids,
    unique_labels,
)
from harness.report_metrics import COMPARE_METRICS
from harness.run_conditions import describe as describe_conditions
from harness.svg_charts import Frame, Series, bar_chart, rate_color

CSS = """
:root { --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; --card:#fff; --ok:#1a7f37; --bad:#cf222e;
        --warn:#bf8700; --accent:#0969da; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); line-height:1.5;
       font:15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1200px; margin:0 auto; padding:28px 20px 48px; }
h1 { font-size:26px; margin:0 0 4px; } h2 { font-size:19px; margin:36px 0 12px; }
.sub { color:var(--muted); margin:0; font-size:13px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(250px, 1fr)); gap:14px; margin-top:20px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.card h3 { margin:0; font-size:15px; overflow-wrap:anywhere; } .card .backend { color:var(--muted); font-size:12px; }
.card .big { font-size:30px; font-weight:650; margin:8px 0 0; } .card .big small { font-size:13px; color:var(--muted);
  font-weight:400; }
.card dl { display:grid; grid-template-columns:auto auto; gap:2px 12px; margin:10px 0 0; font-size:13px; }
.card dt { color:var(--muted); } .card dd { margin:0; text-align:right; font-variant-numeric:tabular-nums; }
.card dd.classes { font-size:12px; overflow-wrap:anywhere; }
.card pre.why { font-size:12px; white-space:pre-wrap; overflow-wrap:anywhere; margin:8px 0 0; }
.charts { display:grid; grid-template-columns:repeat(auto-fit, minmax(460px, 1fr)); gap:14px; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.panel h3 { margin:0 0 8px; font-size:15px; } .panel.wide { grid-column:1 / -1; }
svg.chart { display:block; max-width:100%; height:auto; margin:0 auto; font-family:inherit; }
svg .grid { stroke:#eaeef2; stroke-width:1; } svg .tick { fill:var(--muted); font-size:11px; }
svg .label { fill:var(--fg); font-size:13px; } svg .value { fill:var(--fg); font-size:12px; }
svg .muted { fill:var(--muted); } svg .legend { fill:var(--fg); font-size:12px; }
.scroll { overflow-x:auto; background:var(--card); border:1px solid var(--line); border-radius:10px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:7px 8px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { background:#f3f5f7; font-weight:600; } tr:last-child td { border-bottom:0; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.best { background:#dafbe1; font-weight:650; }
td.model { overflow-wrap:anywhere; min-width:160px; } td.sid { white-space:nowrap; }
.ok { color:var(--ok); font-weight:600; } .bad { color:var(--bad); font-weight:600; } .warn { color:var(--warn); } .none { color:var(--muted); }
details summary { cursor:pointer; color:var(--bad); font-weight:600; white-space:nowrap; }
.pill { display:inline-block; white-space:nowrap; padding:0 8px; border-radius:10px; font-size:12px; font-weight:600; }
.pill.ok { background:#dafbe1; color:var(--ok); } .pill.bad { background:#ffebe9; color:var(--bad); }
.pill.warn { background:#fff8c5; color:#7d4e00; } .pill.none { background:#eaeef2; color:var(--muted); }
.verdict { font-size:17px; font-weight:650; padding:10px 14px; border-radius:10px; margin:16px 0 10px; }
.verdict.ok { background:#dafbe1; color:var(--ok); } .verdict.bad { background:#ffebe9; color:var(--bad); }
details[open] summary { margin-bottom:6px; }
.turn { border-left:3px solid var(--bad); padding:4px 0 4px 10px; margin:6px 0; min-width:260px; }
.turn ul { margin:4px 0; padding-left:18px; } .turn .meta { color:var(--muted); font-size:12px; }
pre { background:#f6f8fa; border:1px solid var(--line); border-radius:6px; padding:6px 8px; margin:4px 0;
      font:12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space:pre-wrap;
      overflow-wrap:anywhere; max-height:260px; overflow:auto; }
code { font:12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { margin-top:32px; color:var(--muted); font-size:12px; overflow-wrap:anywhere; }
@media (max-width:640px) { .charts { grid-template-columns:1fr; } main { padding:16px 10px; } }
"""

LATENCY_SERIES = (
    ("TTFT p50", "#9ec5fe", "ttft_p50"),
    ("TTFT p95", "#0969da", "ttft_p95"),
    ("Latency p50", "#d2b8f5", "latency_p50"),
    ("Latency p95", "#8250df", "latency_p95"),
)


def render_html(
    runs: list[RunView], title: str = "ccbench report", preface: str = "", warnings: list[str] | None = None
) -> str:
    """The whole page; `preface` is trusted HTML put above the cards (the gate's verdict); `warnings` (default:
    why the runs may not compare) are shown beneath it."""
    labels = unique_labels(runs)
    notes = comparability_notes(runs) if warnings is None else warnings
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{len(runs)} run(s) · {len(scenario_ids(runs))} scenario(s) · generated {generated}</p>',
        preface,
        "".join(f'<p class="warn">⚠ {escape(note)}</p>' for note in notes),
        '<section class="cards">'
        + "".join(_card(run, name) for run, name in zip(runs, model_names(runs), strict=True))
        + "</section>",
        "<h2>Charts</h2>",
        _charts(runs, chart_labels(runs)),
        "<h2>Summary</h2>",
        _summary_table(runs, labels),
        "<h2>Scenarios</h2>",
        '<p class="sub">Each failing cell opens to the failing turns: problems, expected tools and the tool call the model made.</p>',
        _matrix(runs, labels),
        "<footer>Results: " + ", ".join(f"<code>{escape(r.source)}</code>" for r in runs) + "</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def render_gate_html(result: GateResult) -> str:
    """The compare report of baseline and candidate, headed by the gate's verdict and its checks."""
    rows = "".join(
        f'<tr><td>{escape(c.label)}</td><td class="num">{escape(format_value(c.kind, c.baseline))}</td>'
        f'<td class="num">{escape(format_value(c.kind, c.candidate))}</td><td class="num">{escape(c.delta)}</td>'
        f"<td>{escape(c.threshold)}</td><td>{_verdict_pill(c.verdict)}</td><td>{escape(c.reason)}</td></tr>"
        for c in result.checks
    )
    rows += "".join(
        f"<tr><td>scenario <code>{escape(c.id)}</code></td><td></td><td></td><td></td><td>no pass → fail</td>"
        f"<td>{_verdict_pill(c.verdict)}</td><td>{escape(c.reason)}</td></tr>"
        for c in result.scenario_checks
        if c.verdict in ("fail", "allowed")
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("Check", "Baseline", "Candidate", "Delta", "Threshold", "Verdict", "Why")
    )
    notes = "".join(f'<p class="sub">{escape(note)}</p>' for note in result.notes)
    banner = f'<p class="verdict {"ok" if result.passed else "bad"}">{escape(result.verdict_line)}</p>'
    preface = f'{banner}<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>{notes}'
    # the gate's notes above already say where the runs' conditions differ
    return render_html([result.baseline, result.candidate], "ccbench gate", preface, warnings=[])


def _verdict_pill(verdict: str) -> str:
    css = {"pass": "ok", "fail": "bad", "noise": "warn", "allowed": "warn", "skip": "none"}[verdict]
    text = {"noise": "within noise"}.get(verdict, verdict)
    return f'<span class="pill {css}">{text}</span>'


def chart_labels(runs: list[RunView]) -> list[str]:
    """Short row labels for the charts: the backend only when the runs use different ones."""
    if len({run.preset for run in runs}) > 1:
        return unique_labels(runs)
    return model_names(runs)


def _card(run: RunView, name: str) -> str:
    m = run.metrics
    passed = sum(s.passed for s in run.scenarios)
    tool = m["tool_call_success"]
    tool_class = "none" if tool is None else "ok" if tool >= 0.95 else "warn" if tool >= 0.8 else "bad"
    rows = [
        ("Schema validity", format_value("rate", m["schema_validity"])),
        ("Scenarios passed", f"{passed} / {len(run.scenarios)}"),
        ("TTFT p95", format_value("ms", m["ttft_p95"])),
        ("Latency p95", format_value("ms", m["latency_p95"])),
        ("Output tok/s", format_value("tps", m["output_tokens_per_s"])),
        ("Errors per run", format_value("count", m["errors_per_run"])),
    ]
    if run.repeats > 1:
        rows.append(("Repeats", str(run.repeats)))
    conditions = describe_conditions(run)
    if conditions:
        rows.append(("Run", conditions))
    failures = sorted(((n, c) for c, n in run.failure_classes.items() if n), reverse=True)
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    if failures:
        listed = ", ".join(f"{c} {n:g}" for n, c in failures)
        items += f'<dt>Failures</dt><dd class="classes">{escape(listed)}</dd>'
    backend = " · ".join(part for part in (run.preset or "—", run.base_url, run.created_at) if part)
    why = diagnose(run)
    notes = f'<pre class="why">{escape(chr(10).join(line.strip() for line in why))}</pre>' if why else ""
    return (
        f'<div class="card"><h3>{escape(name)}</h3><div class="backend">{escape(backend)}</div>'
        f'<p class="big {tool_class}">{escape(format_value("rate", tool))} <small>tool-call success</small></p>'
        f"<dl>{items}</dl>{notes}</div>"
    )


def _charts(runs: list[RunView], labels: list[str]) -> str:
    pct = lambda v: f"{v * 100:.0f} %"  # noqa: E731
    rate_charts = [
        bar_chart(
            title,
            labels,
            [Series(title, "#1a7f37", [r.metrics[key] for r in runs])],
            axis_max=1.0,
            fmt=pct,
            color_by_value=rate_color,
            frame=Frame(width=540, label_width=250),
        )
        for title, key in (("Tool-call success", "tool_call_success"), ("Schema validity", "schema_validity"))
    ]
    latency = bar_chart(
        "Latency (ms)",
        labels,
        [Series(name, color, [r.metrics[key] for r in runs]) for name, color, key in LATENCY_SERIES],
        fmt=lambda v: format_value("ms", v),
        frame=Frame(width=980, label_width=260),
    )
    panels = [
        f'<div class="panel"><h3>Tool-call success per model</h3>{rate_charts[0]}</div>',
        f'<div class="panel"><h3>Schema validity per model</h3>{rate_charts[1]}</div>',
        f'<div class="panel wide"><h3>Latency per model: TTFT and total, p50 and p95</h3>{latency}</div>',
    ]
    return '<section class="charts">' + "".join(panels) + "</section>"


def _summary_table(runs: list[RunView], labels: list[str]) -> str:
    best = {s.key: best_rows([r.metrics[s.key] for r in runs], s.higher_is_better) for s in COMPARE_METRICS}
    head = (
        "<tr><th>Model · backend</th>"
        + "".join(f"<th>{escape(s.label)}</th>" for s in COMPARE_METRICS)
        + "</tr>"
    )
    rows = []
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        cells = [f'<td class="model">{escape(label)}</td>']
        for spec in COMPARE_METRICS:
            css = "num best" if i in best[spec.key] else "num"
            cells.append(f'<td class="{css}">{escape(format_value(spec.kind, run.metrics[spec.key]))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = '<p class="sub">Best value per column highlighted. — means nothing to measure (null).</p>'
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>{note}'


def _matrix(runs: list[RunView], labels: list[str]) -> str:
    head = "<tr><th>Scenario</th>" + "".join(f"<th>{escape(label)}</th>" for label in labels) + "</tr>"
    rows = []
    for sid in scenario_ids(runs):
        cells = [f'<td class="sid"><code>{escape(sid)}</code></td>']
        cells += [f"<td>{_matrix_cell(run.scenario(sid), run.repeats)}</td>" for run in runs]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _matrix_cell(scenario: ScenarioView | None, repeats: int) -> str:
    if scenario is None:
        return '<span class="none">—</span>'
    counts = scenario.pass_count(repeats)
    if scenario.passed:
        return f'<span class="pill ok">pass</span>{counts}'
    named = zip(scenario.turns, scenario.turn_names(repeats > 1), strict=True)
    turns = "".join(_turn_details(turn, name) for turn, name in named if not turn.passed)
    summary = f'<span class="pill bad">fail</span> {escape(scenario.failure_class or "failed")}{counts}'
    return f"<details><summary>{summary}</summary>{turns or '<p>no failing turn recorded</p>'}</details>"


def _turn_details(turn: TurnView, name: str) -> str:
    """One failing turn: its class, problems, backend error, expected tools and the calls the model made."""
    meta = f"{name} · {turn.failure_class or 'failed'}"
    parts = [f'<div class="turn"><div class="meta">{escape(meta)}</div>']
    if turn.problems:
        parts.append("<ul>" + "".join(f"<li>{escape(p)}</li>" for p in turn.problems) + "</ul>")
    if turn.error:
        parts.append(
            f"<div>backend error: <code>{escape(str(turn.error.get('type', '')))}</code> "
            f"{escape(str(turn.error.get('message', '')))}</div>"
        )
    if turn.expected_tools:
        parts.append(
            "<div>expected: " + ", ".join(f"<code>{escape(t)}</code>" for t in turn.expected_tools) + "</div>"
        )
    if turn.tool_calls:
        for call in turn.tool_calls:
            payload = json.dumps(call.get("input"), indent=2, ensure_ascii=False, default=str)
            parts.append(
                f"<div>model called <code>{escape(str(call.get('name')))}</code>:</div><pre>{escape(payload)}</pre>"
            )
    elif turn.expected_tools:
        parts.append('<div class="meta">the model made no tool call</div>')
    parts.append("</div>")
    return "".join(parts)
