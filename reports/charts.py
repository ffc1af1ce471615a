"""Training curves as inline-SVG geometry: one chart per loss, one line per seed.

Only numbers are computed here (formatted with fixed precision so renders are byte-stable);
the template draws them, so every label (loss names come from plugins) goes through autoescape.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.reports.cells import fmt
from bench.reports.runs import Run, as_dict, as_list, as_number, as_text

WIDTH, HEIGHT = 440, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 36  # room for the axis labels


@dataclass
class Series:
    label: str  # e.g. "seed 0"
    index: int  # picks its colour class
    segments: list[str]  # SVG polyline "points"; a gap in the history starts a new segment
    dots: list[tuple[str, str]]  # lone points (a one-point segment draws no line)


class Frame:
    """An SVG plot's size and the edges of its plot area, in pixels, from the class's ``SIZE`` (width, height) and
    ``MARGINS`` (left, right, top, bottom): the one frame every chart of the site is drawn in."""

    SIZE = (WIDTH, HEIGHT)
    MARGINS = (LEFT, RIGHT, TOP, BOTTOM)

    width = property(lambda self: self.SIZE[0])
    height = property(lambda self: self.SIZE[1])
    left = property(lambda self: self.MARGINS[0])
    right = property(lambda self: self.SIZE[0] - self.MARGINS[1])
    top = property(lambda self: self.MARGINS[2])
    bottom = property(lambda self: self.SIZE[1] - self.MARGINS[3])


@dataclass
class Chart(Frame):
    title: str
    x_label: str
    x_range: tuple[str, str]
    y_range: tuple[str, str]
    series: list[Series]


def _span(low: float, high: float) -> tuple[float, float]:
    if high > low:
        return low, high
    pad = abs(low) * 0.1 or 0.5  # a flat curve still gets a visible box around it
    return low - pad, high + pad


def loss_charts(runs: list[Run], x_axis: str = "step") -> list[Chart]:
    """``x_axis`` is "step" or "time" (seconds of training)."""
    curves: dict[str, list[tuple[str, list[tuple[float, float | None]]]]] = {}
    for run in runs:
        history = as_dict(run.raw.get("history"))
        xs = [as_number(x) for x in as_list(history.get(x_axis))]
        for name, values in sorted(as_dict(history.get("losses")).items()):
            points = [(x, as_number(y)) for x, y in zip(xs, as_list(values)) if x is not None]
            if any(y is not None for _, y in points):
                curves.setdefault(as_text(name), []).append((f"seed {run.seed}", points))
    charts = []
    for name, lines in sorted(curves.items()):
        xs = [x for _, points in lines for x, _ in points]
        ys = [y for _, points in lines for _, y in points if y is not None]
        x_lo, x_hi = _span(min(xs), max(xs))
        y_lo, y_hi = _span(min(ys), max(ys))

        def to_svg(x: float, y: float) -> tuple[str, str]:
            sx = LEFT + (x - x_lo) / (x_hi - x_lo) * (WIDTH - RIGHT - LEFT)
            sy = HEIGHT - BOTTOM - (y - y_lo) / (y_hi - y_lo) * (HEIGHT - BOTTOM - TOP)
            return f"{sx:.1f}", f"{sy:.1f}"

        series = []
        for index, (label, points) in enumerate(lines):
            segments, dots, current = [], [], []
            for x, y in points + [(None, None)]:
                if y is not None:
                    current.append(to_svg(x, y))
                    continue
                if len(current) == 1:
                    dots.append(current[0])
                elif current:
                    segments.append(" ".join(f"{sx},{sy}" for sx, sy in current))
                current = []
            series.append(Series(label, index % 6, segments, dots))
        charts.append(Chart(
            title=name, x_label="training seconds" if x_axis == "time" else "step",
            x_range=(fmt(min(xs)), fmt(max(xs))), y_range=(fmt(min(ys)), fmt(max(ys))), series=series,
        ))
    return charts
