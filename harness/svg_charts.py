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

    @property
    def label_chars(self) -> int:
        """Characters that fit left of the bars on one line (at most 8 units per character at 13 px)."""
        return max(8, (self.label_width - 14) // 8)

    def label_lines(self, label: str) -> list[str]:
        """A label as the lines drawn left of its bars: whole when it fits; else without a path or org prefix
        (the file or model name says most); else wrapped onto up to MAX_LABEL_LINES lines, so that names which
        differ only in the middle ("Qwen3-Coder-30B-A3B-…-Q4_K_M.gguf" and "Qwen3-Coder-480B-A35B-…") stay
        apart. Only a label longer than that is cut, in its middle, keeping the end where backends differ."""
        chars = self.label_chars
        if len(label) > chars:
            label = label.rsplit("/", 1)[-1]
        lines: list[str] = []
        while len(label) > chars and len(lines) < MAX_LABEL_LINES - 1:
            cut = _break_at(label, chars)
            lines.append(label[:cut].rstrip())
            label = label[cut:].lstrip()
        if len(label) > chars:
            head = chars // 3
            label = label[:head] + "…" + label[len(label) - (chars - head - 1) :]
        return [*lines, label]


MAX_LABEL_LINES = 3
LABEL_LINE_HEIGHT = 15


def _break_at(text: str, chars: int) -> int:
    """Where to end a wrapped line of at most `chars` characters: after the last space in its second half (the
    " · " before the backend), else the last "-", "/", ".", "_" there, in that order, else at `chars`."""
    for separators in (" ", "-/", ".", "_"):
        for i in range(chars, chars // 2, -1):
            if text[i - 1] in separators:
                return i
    return chars


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
    bars_h = len(series) * (bar_h + gap) - gap
    label_lines = [frame.label_lines(label) for label in labels]
    row_h = [max(bars_h, LABEL_LINE_HEIGHT * len(lines)) for lines in label_lines]
    legend_h = 28 if len(series) > 1 else 0
    top = 12 + legend_h
    height = top + sum(h + group_gap for h in row_h) + 26
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
    y0 = top
    for row, label in enumerate(labels):
        lines = label_lines[row]
        # the first line's baseline: the lines centred on the row
        first = y0 + row_h[row] / 2 + 5 - LABEL_LINE_HEIGHT * (len(lines) - 1) / 2
        spans = "".join(
            f'<tspan x="{label_x - 10}" y="{first + LABEL_LINE_HEIGHT * i:.1f}">{escape(line)}</tspan>'
            for i, line in enumerate(lines)
        )
        parts.append(f'<text class="label" text-anchor="end"><title>{escape(label)}</title>{spans}</text>')
        bars_top = y0 + (row_h[row] - bars_h) // 2
        y0 += row_h[row] + group_gap
        for k, s in enumerate(series):
            y = bars_top + k * (bar_h + gap)
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
