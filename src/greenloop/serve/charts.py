"""Charts as inline SVG, rendered on the server: no JavaScript, no build step, no network.

Pure functions from values to markup. The same SVG works in the served pages, in the
one-file HTML report and in a screenshot. Every mark carries a `<title>`, which
browsers show as a tooltip, so the numbers behind a point are one hover away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Colours of the outcomes and verdicts, shared with dashboard.css.
OUTCOME_COLOURS = {
    "passed": "#2e7d32",
    "green": "#2e7d32",
    "failed": "#c62828",
    "failing": "#c62828",
    "error": "#ad1457",
    "timeout": "#6a1b9a",
    "crashed": "#4a148c",
    "blocked": "#ef6c00",
    "skipped": "#90a4ae",
    "not_real": "#5d4037",
    "flaky": "#f9a825",
}
_OTHER = "#78909c"


@dataclass(frozen=True)
class Point:
    """One value of a series: `value` None means nothing to measure (drawn as a gap)."""

    label: str  # what the tooltip names, e.g. a run id
    value: float | None
    href: str | None = None  # where clicking the point goes


@dataclass(frozen=True)
class Series:
    """A named line of points, oldest first."""

    name: str
    points: tuple[Point, ...]
    colour: str = "#1565c0"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "%",
    maximum: float | None = None,
    width: int = 560,
    height: int = 160,
    highlight: str | None = None,
) -> Markup:
    """A line chart of one or more series sharing the x axis (one slot per point).

    `unit` "%" reads values as fractions 0..1 and labels the axis 0-100 %; any other
    unit draws 0..`maximum` (default: the largest value) and labels it with the unit
    ("" for a plain count).
    `highlight` is the label of a point to ring (the run a page is about).
    Returns safe markup: every text from the data is escaped.
    """
    pad_l, pad_r, pad_t, pad_b = 44, 12, 22, 18
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    slots = max((len(s.points) for s in series), default=0)
    values = [p.value for s in series for p in s.points if p.value is not None]
    if unit == "%":
        top = 1.0
    else:
        top = maximum if maximum is not None else max(values, default=0.0)
        top = top or 1.0
        if not unit:  # a count: an even whole top, so the middle line is whole too
            top = float(max(2, math.ceil(top / 2) * 2))
    parts = [_svg_open(width, height, title)]
    parts.append(f'<text class="chart-title" x="{pad_l}" y="14">{escape(title)}</text>')
    for frac in (0.0, 0.5, 1.0):
        y = pad_t + inner_h * (1 - frac)
        parts.append(
            f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{pad_l - 4}" y="{y + 3:.1f}" text-anchor="end">'
            f"{escape(_axis_label(frac * top, unit))}</text>"
        )
    if not values:
        parts.append(
            f'<text class="empty" x="{width / 2:.0f}" y="{pad_t + inner_h / 2:.0f}" '
            f'text-anchor="middle">nothing to measure yet</text>'
        )

    def x_of(i: int) -> float:
        return pad_l + (inner_w * (i + 0.5) / slots if slots else 0)

    def y_of(v: float) -> float:
        return pad_t + inner_h * (1 - min(max(v / top, 0.0), 1.0))

    for s in series:
        # Gaps split the line: a run with nothing to measure is not a zero.
        runs: list[list[str]] = [[]]
        for i, p in enumerate(s.points):
            if p.value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x_of(i):.1f},{y_of(p.value):.1f}")
        for segment in runs:
            if len(segment) > 1:
                parts.append(
                    f'<polyline class="series" fill="none" stroke="{s.colour}" '
                    f'stroke-width="2" points="{" ".join(segment)}"/>'
                )
        for i, p in enumerate(s.points):
            if p.value is None:
                continue
            ring = p.label == highlight
            dot = (
                f'<circle class="point{" highlight" if ring else ""}" cx="{x_of(i):.1f}" '
                f'cy="{y_of(p.value):.1f}" r="{5 if ring else 3}" fill="{s.colour}">'
                f"<title>{escape(s.name)} {escape(_value_label(p.value, unit))}: "
                f"{escape(p.label)}</title></circle>"
            )
            parts.append(f'<a href="{escape(p.href)}">{dot}</a>' if p.href else dot)
    if len(series) > 1:
        x = pad_l + inner_w
        for s in reversed(series):
            label = escape(s.name)
            parts.append(
                f'<text class="legend" x="{x}" y="14" text-anchor="end" '
                f'style="fill:{s.colour}">{label}</text>'
            )
            x -= 7 * len(s.name) + 16
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bar(
    counts: Sequence[tuple[str, int]], *, title: str, width: int = 1132, height: int = 34
) -> Markup:
    """One horizontal bar split by outcome (passed 30, failed 2, ...), zero counts left out."""
    total = sum(n for _, n in counts if n > 0)
    parts = [_svg_open(width, height, title)]
    if not total:
        parts.append(f'<text class="empty" x="4" y="{height / 2 + 4:.0f}">no tests</text>')
    x = 0.0
    for name, n in counts:
        if n <= 0:
            continue
        w = width * n / total
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="4" width="{w:.1f}" height="{height - 8}" '
            f'fill="{OUTCOME_COLOURS.get(name, _OTHER)}"><title>{escape(name)}: {n}</title></rect>'
        )
        if w > 60:
            parts.append(
                f'<text class="bar-label" x="{x + 6:.1f}" y="{height / 2 + 4:.0f}">'
                f"{escape(name)} {n}</text>"
            )
        x += w
    parts.append("</svg>")
    return Markup("".join(parts))


def outcome_strip(
    outcomes: Sequence[tuple[str, str]], *, title: str, cell: int = 12, gap: int = 2
) -> Markup:
    """Squares coloured by outcome, oldest first: a test's or a component's history.

    `outcomes` are (outcome, tooltip) pairs.
    """
    width = max(len(outcomes), 1) * (cell + gap)
    parts = [_svg_open(width, cell, title, css="strip")]
    for i, (outcome, tip) in enumerate(outcomes):
        parts.append(
            f'<rect class="cell" x="{i * (cell + gap)}" y="0" width="{cell}" height="{cell}" '
            f'rx="2" fill="{OUTCOME_COLOURS.get(outcome, _OTHER)}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _svg_open(width: int, height: int, title: str, css: str = "chart") -> str:
    return (
        f'<svg class="{css}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}">'
    )


def _axis_label(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0%}"
    if not unit:  # a count
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"


def _value_label(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0%}"
    if not unit:
        return f"{value:g}"
    return f"{value:.1f} {unit}"
