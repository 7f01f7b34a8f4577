"""Small inline SVG charts for reports: built from numbers only (each one formatted here), with
every text label escaped, so a chart can be marked safe without trusting anything it shows.
No JS chart library and no network: the page stays one self-contained file."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

NICE = (0.5, 1, 2, 2.5, 5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 150, 200, 250, 500, 1000)


def _n(x: float) -> str:
    return f"{x:.1f}"


def nice_limit(values: list[float]) -> float:
    """The smallest 'round' bound at least as large as every |value| (an axis from -it to +it)."""
    top = max((abs(v) for v in values if _finite(v)), default=0.0)
    return next((n for n in NICE if n >= top), math.ceil(top))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def delta_bar(delta: float, low: float, high: float, limit: float, tone: str, label: str,
              width: int = 220, height: int = 20) -> Markup:
    """A difference on an axis from -limit to +limit: zero line, a bar from 0 to `delta`, a dot
    at it and a whisker over its CI. `tone` picks the colour (a CSS class)."""
    pad = 6

    def x(v: float) -> float:
        v = max(-limit, min(limit, v))
        return pad + (v + limit) / (2 * limit) * (width - 2 * pad)

    mid = height / 2
    x0, xd, xl, xh = x(0.0), x(delta), x(low), x(high)
    return Markup(
        f'<svg class="delta {escape(tone)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f'<title>{escape(label)}</title>'
        f'<line class="zero" x1="{_n(x0)}" y1="1" x2="{_n(x0)}" y2="{height - 1}"/>'
        f'<rect class="bar" x="{_n(min(x0, xd))}" y="{_n(mid - 4)}" width="{_n(abs(xd - x0))}" '
        f'height="8"/>'
        f'<line class="ci" x1="{_n(xl)}" y1="{_n(mid)}" x2="{_n(xh)}" y2="{_n(mid)}"/>'
        f'<line class="ci" x1="{_n(xl)}" y1="{_n(mid - 5)}" x2="{_n(xl)}" y2="{_n(mid + 5)}"/>'
        f'<line class="ci" x1="{_n(xh)}" y1="{_n(mid - 5)}" x2="{_n(xh)}" y2="{_n(mid + 5)}"/>'
        f'<circle class="dot" cx="{_n(xd)}" cy="{_n(mid)}" r="3.5"/></svg>')


def axis(limit: float, unit: str, width: int = 220) -> Markup:
    """Tick labels under a column of delta bars: -limit, 0, +limit."""
    pad = 6
    ticks = ((pad, "start", f"{-limit:g}"), (width / 2, "middle", "0"),
             (width - pad, "end", f"+{limit:g} {unit}"))
    labels = "".join(f'<text x="{_n(x)}" y="11" text-anchor="{a}">{escape(t)}</text>'
                     for x, a, t in ticks)
    return Markup(f'<svg class="axis" width="{width}" height="14" viewBox="0 0 {width} 14" '
                  f'aria-hidden="true">{labels}</svg>')


def two_intervals(before: dict, after: dict, label: str, width: int = 220) -> Markup:
    """Two means with their CIs on a 0..1 axis, before (top) and after (bottom)."""
    pad, height = 6, 26

    def x(v) -> float:
        return pad + max(0.0, min(1.0, v)) * (width - 2 * pad)

    parts = [f'<line class="zero" x1="{_n(x(0))}" y1="1" x2="{_n(x(0))}" y2="{height - 1}"/>',
             f'<line class="zero" x1="{_n(x(1))}" y1="1" x2="{_n(x(1))}" y2="{height - 1}"/>']
    for cls, m, y in (("before", before, 7), ("after", after, 19)):
        if not all(_finite(m.get(k)) for k in ("value", "ci_low", "ci_high")):
            continue
        parts.append(f'<g class="{cls}"><line x1="{_n(x(m["ci_low"]))}" y1="{y}" '
                     f'x2="{_n(x(m["ci_high"]))}" y2="{y}"/>'
                     f'<circle cx="{_n(x(m["value"]))}" cy="{y}" r="3.5"/></g>')
    return Markup(f'<svg class="pair" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
                  f'<title>{escape(label)}</title>{"".join(parts)}</svg>')


def line_chart(series: dict[str, list[list[float]]], title: str, width: int = 460,
               height: int = 170) -> Markup:
    """Polylines of (x, y) points (a training curve by step), on shared axes with the extremes
    labelled; one CSS class per series in order (s0, s1, ...) and a legend."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return Markup("")
    left, right, top, bottom = 52, 12, 20, 24
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0

    def xy(p) -> str:
        px = left + (p[0] - x_lo) / x_span * (width - left - right)
        py = height - bottom - (p[1] - y_lo) / y_span * (height - top - bottom)
        return f"{_n(px)},{_n(py)}"

    lines = "".join(f'<polyline class="s{i}" points="{" ".join(xy(p) for p in pts)}"/>'
                    for i, pts in enumerate(series.values()))
    legend = "".join(f'<text class="s{i}" x="{left + 150 * i}" y="12">{escape(name)}</text>'
                     for i, name in enumerate(series))
    base = height - bottom
    frame = (f'<line class="frame" x1="{left}" y1="{top}" x2="{left}" y2="{base}"/>'
             f'<line class="frame" x1="{left}" y1="{base}" x2="{width - right}" y2="{base}"/>')
    labels = (f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{y_hi:.3g}</text>'
              f'<text x="{left - 4}" y="{base}" text-anchor="end">{y_lo:.3g}</text>'
              f'<text x="{left}" y="{height - 6}">step {x_lo:g}</text>'
              f'<text x="{width - right}" y="{height - 6}" text-anchor="end">{x_hi:g}</text>')
    return Markup(f'<svg class="curve" width="{width}" height="{height}" '
                  f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
                  f'<title>{escape(title)}</title>{frame}{lines}{labels}{legend}</svg>')
