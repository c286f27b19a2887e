"""Charts as inline SVG, drawn on the server: line charts (metric against step, several runs overlaid),
horizontal bar charts (label counts) and histograms (text lengths).

Plain functions from numbers to ``Markup``; every text that reaches the SVG is escaped here. Written by
hand rather than with a chart library because the pages must work offline with no JavaScript, and an
SVG of a few polylines is smaller than any library's output. Each chart carries a ``<title>`` and
``aria-label`` for screen readers, and a ``viewBox`` so it scales to the page's width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# A colour-blind-safe palette (Okabe & Ito), one colour per overlaid series.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
Scale = Callable[[float], float]  # data coordinate -> SVG coordinate
MAX_POINTS = 2000  # points drawn per series; longer series are thinned evenly (the last point kept)


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (step, value), sorted by step
    marked: bool = False  # draw a marker at every point (evaluation points)


def _fmt(value: float) -> str:
    """Short tick text (3 significant digits: 0.0004, 1.5, 1.2e+04), so labels fit a phone's width."""
    return f"{value:.3g}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _thin(points: Sequence[tuple[float, float]]) -> Sequence[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    return [points[int(i * stride)] for i in range(MAX_POINTS - 1)] + [points[-1]]


def _frame(title: str, body: list[str], height: int = HEIGHT) -> Markup:
    label = escape(title)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>' + "".join(body) + "</svg>"
    )


def line_chart(
    title: str, series: Sequence[Series], x_label: str = "step", marks: Sequence[float] = ()
) -> Markup:
    """Each series a polyline of its (step, value) points on shared axes, with a legend below;
    ``marks`` (the steps of evaluations) are triangles on the step axis."""
    finite = [(x, y) for s in series for x, y in s.points if math.isfinite(y)]
    if not finite:
        return _frame(title, [f'<text x="{LEFT}" y="{HEIGHT // 2}">no values</text>'])
    x0, x1 = min(p[0] for p in finite), max(p[0] for p in finite)
    y0, y1 = min(p[1] for p in finite), max(p[1] for p in finite)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    legend_rows = math.ceil(len(series) / 3)
    height = HEIGHT + 18 * legend_rows
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    body = _axes(_ticks(x0, x1), _ticks(y0, y1), sx, sy, x_label)
    bottom = HEIGHT - BOTTOM
    for step in sorted(set(marks))[:200]:
        if x0 <= step <= x1:
            x = sx(step)
            body.append(
                f'<path class="mark" d="M {x:.1f} {bottom} l -4 -7 l 8 0 z" fill="#555">'
                f"<title>evaluation at step {step:g}</title></path>"
            )
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points = [(x, y) for x, y in _thin(s.points) if math.isfinite(y)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        dash = ' stroke-dasharray="5 3"' if s.marked else ""
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{coords}"/>')
        if s.marked or len(points) == 1:
            body += [
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(s.label)} step {x:g}: {_fmt(y)}</title></circle>"
                for x, y in points[:200]
            ]
        lx, ly = LEFT + (i % 3) * 200, HEIGHT + 14 + 18 * (i // 3)
        body.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>')
        body.append(f'<text x="{lx + 16}" y="{ly - 4}" class="legend">{escape(s.label[:30])}</text>')
    return _frame(title, body, height)


def _axes(xticks: list[float], yticks: list[float], fx: Scale, fy: Scale, x_label: str) -> list[str]:
    bottom = HEIGHT - BOTTOM
    out = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" class="axis"/>',
    ]
    for y in yticks:
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{fy(y):.1f}" y2="{fy(y):.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{fy(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    for x in xticks:
        out.append(f'<text x="{fx(x):.1f}" y="{bottom + 16}" text-anchor="middle">{_fmt(x)}</text>')
    out.append(f'<text x="{WIDTH - RIGHT}" y="{bottom + 30}" text-anchor="end">{escape(x_label)}</text>')
    return out


def bar_chart(title: str, bars: Sequence[tuple[str, int]], max_bars: int = 40) -> Markup:
    """Horizontal bars, one per (label, count), in the order given; the first ``max_bars``."""
    shown = list(bars[:max_bars])
    if not shown:
        return _frame(title, [f'<text x="{LEFT}" y="30">no labels</text>'], 50)
    row, label_w = 20, 180
    height = TOP + row * len(shown) + 8
    top = max(n for _, n in shown) or 1
    body = []
    for i, (label, n) in enumerate(shown):
        y = TOP + i * row
        w = (WIDTH - label_w - 70) * n / top
        text = escape(label if len(label) <= 28 else label[:27] + "…")
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{text}</text>')
        body.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {n}</title></rect>"
        )
        body.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{n}</text>')
    return _frame(title, body, height)


def histogram(title: str, edges: Sequence[float], counts: Sequence[int], x_label: str) -> Markup:
    """Bars over bins: ``counts[i]`` rows in ``[edges[i], edges[i + 1])``."""
    if not counts or sum(counts) == 0:
        return _frame(title, [f'<text x="{LEFT}" y="30">no rows</text>'], 50)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max(counts)

    def sx(x: float) -> float:
        return LEFT + (x - edges[0]) / ((edges[-1] - edges[0]) or 1) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - y / top) * plot_h

    body = _axes(_ticks(edges[0], edges[-1]), _ticks(0, top), sx, sy, x_label)
    for i, n in enumerate(counts):
        left, right = sx(edges[i]), sx(edges[i + 1])
        body.append(
            f'<rect x="{left:.1f}" y="{sy(n):.1f}" width="{max(right - left - 1, 1):.1f}" '
            f'height="{HEIGHT - BOTTOM - sy(n):.1f}" fill="{PALETTE[2]}">'
            f"<title>{_fmt(edges[i])}-{_fmt(edges[i + 1])}: {n}</title></rect>"
        )
    return _frame(title, body)
