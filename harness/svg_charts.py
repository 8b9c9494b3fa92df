"""Inline SVG bar charts drawn by hand, so the HTML report needs no chart library, CDN or network.

The charts keep their size and shrink with a narrow page (viewBox + max-width 100 %) and carry <title> tooltips with the exact values.
Labels are escaped: model names come from results files and are untrusted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

RIGHT_MARGIN = 80


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]


def rate_color(value: float) -> str:
    """Green when (nearly) everything passed, amber for partial, red for mostly failing."""
    if value >= 0.95:
        return "#1a7f37"
    if value >= 0.8:
        return "#bf8700"
    return "#cf222e"


@dataclass(frozen=True)
class Frame:
    """Chart geometry in SVG user units (drawn 1:1 in CSS pixels unless the page is narrower)."""

    width: int = 760
    label_width: int = 220

    @property
    def span(self) -> float:
        return self.width - self.label_width - RIGHT_MARGIN

    def short(self, label: str) -> str:
        """Cut a label to what fits left of the bars (at most 8 units per character at 13 px), keeping its
        start and its end, where model files and backends differ ("Qwen3-Cod…-Q4_K_M.gguf · llamacpp")."""
        chars = max(8, (self.label_width - 14) // 8)
        if len(label) <= chars:
            return label
        label = label.rsplit("/", 1)[-1]  # a model path or org/name: the file or model name says most
        if len(label) <= chars:
            return label
        head = chars // 3
        return label[:head] + "…" + label[len(label) - (chars - head - 1) :]


def _nice_max(value: float) -> float:
    """A round axis end at or above value (1, 2, 2.5, 3, 4, 5, 6, 8 x 10^n), so four ticks stay round."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 3, 4, 5, 6, 8, 10) if step * magnitude >= value)


def _axis(
    frame: Frame, top: int, bottom: int, axis_max: float, fmt: Callable[[float], str], ticks: int = 4
) -> list[str]:
    parts = []
    for i in range(ticks + 1):
        x = frame.label_width + frame.span * i / ticks
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" class="grid"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" class="tick" text-anchor="middle">{escape(fmt(axis_max * i / ticks))}</text>'
        )
    return parts


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    axis_max: float | None = None,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    color_by_value: Callable[[float], str] | None = None,
    frame: Frame = Frame(),
) -> str:
    """Horizontal bars, one group per label and one bar per series; null values print "—" and draw no bar."""
    bar_h, gap, group_gap = 18, 4, 16
    group_h = len(series) * (bar_h + gap) - gap
    legend_h = 28 if len(series) > 1 else 0
    top = 12 + legend_h
    height = top + len(labels) * (group_h + group_gap) + 26
    present = [v for s in series for v in s.values if v is not None]
    axis_max = axis_max or _nice_max(max(present, default=0.0))
    bottom = height - 26
    width, label_x, span = frame.width, frame.label_width, frame.span
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if legend_h:
        x = label_x
        for s in series:
            parts.append(f'<rect x="{x}" y="8" width="12" height="12" rx="2" fill="{s.color}"/>')
            parts.append(f'<text x="{x + 17}" y="18" class="legend">{escape(s.name)}</text>')
            x += 30 + 7 * len(s.name)
    parts += _axis(frame, top - 4, bottom, axis_max, fmt)
    for row, label in enumerate(labels):
        y0 = top + row * (group_h + group_gap)
        parts.append(
            f'<text x="{label_x - 10}" y="{y0 + group_h / 2 + 5:.1f}" class="label" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(frame.short(label))}</text>"
        )
        for k, s in enumerate(series):
            y = y0 + k * (bar_h + gap)
            value = s.values[row]
            if value is None:
                parts.append(
                    f'<text x="{label_x + 6}" y="{y + 13}" class="value muted">— not measured</text>'
                )
                continue
            w = max(1.5, span * min(value, axis_max) / axis_max) if value > 0 else 0
            color = color_by_value(value) if color_by_value else s.color
            tip = escape(f"{label}: {s.name} {fmt(value)}")
            parts.append(
                f'<rect x="{label_x}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" fill="{color}">'
                f"<title>{tip}</title></rect>"
            )
            parts.append(
                f'<text x="{label_x + w + 6:.1f}" y="{y + 13}" class="value">{escape(fmt(value))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
