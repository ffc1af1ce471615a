"""Budget curves: which method wins at which budget (``bench run --budget 2m,5m,15m``).

Boards that differ only in their budget (same dataset and options, size, hardware class, precision and
budget unit) form a family. Per method row, a curve plots a metric's mean and 95 % interval at each
budget, on a log budget axis (inline SVG: numbers here, drawing in the template): the ranking metric's
first, then every other metric with a direction, for the reader to open. A
*crossover* is stated only when the boards' own verdicts decide it: method A distinguishably worse
than B at one budget and distinguishably better at a larger one, with ties (or missing verdicts)
between -- e.g. "pix2pix overtakes unet-l2 between 5m and 15m on lpips, −0.021 [−0.034, −0.008] at 15m".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.reports.board import Board
from bench.reports.cells import fmt
from bench.reports.charts import Frame
from bench.reports.runs import key_text
from bench.reports.verdicts import Comparison, signed

WIDTH, HEIGHT = 560, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 32, 14, 40


@dataclass
class Line:
    label: str
    index: int  # colour class
    points: str  # SVG polyline points
    marks: list[tuple[str, str, str, str]]  # (x, y, y of the interval's top, y of its bottom)
    values: list[dict]  # {budget, mean, ci95}: the numbers behind the marks


@dataclass
class Curve(Frame):
    title: str
    metric: str
    arrow: str
    slug: str
    budgets: list[str]  # labels, smallest first
    ticks: list[tuple[str, str]]  # (x, label)
    y_range: tuple[str, str]
    lines: list[Line]
    crossovers: list[str] = field(default_factory=list)
    ranking: bool = True  # the family's ranking metric (shown first, open); the others are folded
    has_verdicts: bool = True  # the boards have verdicts on this metric (else no crossover can be decided)

    SIZE = (WIDTH, HEIGHT)
    MARGINS = (LEFT, RIGHT, TOP, BOTTOM)


def _curve_key(board: Board) -> tuple:
    return (board.dataset, key_text(board.dataset_options), board.size or 0, board.hardware, board.precision,
            str(board.budget.get("kind")))


def _better(comparison: Comparison | None, a: str) -> int:
    """+1 when ``a`` is distinguishably better, -1 when worse, 0 otherwise."""
    if comparison is None or comparison.better is None:
        return 0
    return 1 if comparison.better == a else -1


def _oriented(comparison: Comparison, a: str) -> str:
    """The comparison's interval as ``a − other``."""
    if comparison.left == a:
        return comparison.interval_text
    lo, hi = comparison.ci95
    return f"{signed(-comparison.difference)} [{signed(-hi)}, {signed(-lo)}]"


def crossovers(boards: list[Board], metric: str) -> list[str]:
    """Decided crossovers along ``boards`` (smallest budget first), in words."""
    pairs: dict[tuple[str, str], list[Comparison | None]] = {}
    for k, board in enumerate(boards):
        for c in board.verdicts.get(metric, []):
            pairs.setdefault(tuple(sorted((c.left, c.right))), [None] * len(boards))[k] = c
    out = []
    for (a, b), along in sorted(pairs.items()):
        for winner, loser in ((a, b), (b, a)):
            last_behind = None
            for k, comparison in enumerate(along):
                sign = _better(comparison, winner)
                if sign < 0:
                    last_behind = k
                elif sign > 0 and last_behind is not None:
                    out.append(f"{winner} overtakes {loser} between {boards[last_behind].budget_text} and "
                               f"{boards[k].budget_text} on {metric}, {_oriented(comparison, winner)} at "
                               f"{boards[k].budget_text}")
                    last_behind = None
    return out


def _curve(group: list[Board], metric: str, arrow: str, ranking: bool) -> Curve | None:
    """The curve of ``metric`` over the boards of one family (smallest budget first), or None without values."""
    series: dict[str, list[tuple[float, float, list[float] | None]]] = {}
    for board in group:
        for row in board.method_rows:
            cell = row.cells.get(metric)
            if row.status == "ok" and cell is not None and cell.mean is not None and math.isfinite(cell.mean):
                series.setdefault(row.label, []).append((board.budget["value"], cell.mean, cell.ci95))
    if not series:
        return None
    xs = [math.log(b.budget["value"]) for b in group]
    ys = [y for points in series.values() for _, mean, ci in points for y in (mean, *(ci or ()))]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.06 or 0.5  # the intervals' ends stay inside the frame
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def sx(value: float) -> str:
        return f"{LEFT + (math.log(value) - x_lo) / (x_hi - x_lo) * (WIDTH - RIGHT - LEFT):.1f}"

    def sy(value: float) -> str:
        return f"{HEIGHT - BOTTOM - (value - y_lo) / (y_hi - y_lo) * (HEIGHT - BOTTOM - TOP):.1f}"

    lines = []
    for index, (label, points) in enumerate(sorted(series.items())):
        marks = [(sx(x), sy(mean), sy(ci[1]) if ci else sy(mean), sy(ci[0]) if ci else sy(mean)) for x, mean, ci in points]
        values = [{"budget": x, "mean": mean, "ci95": ci} for x, mean, ci in points]
        lines.append(Line(label, index % 6, " ".join(f"{mx},{my}" for mx, my, _, _ in marks), marks, values))
    first = group[0]
    options = "".join(f", {k}={v}" for k, v in sorted(first.dataset_options.items()))
    has_verdicts = all(metric in board.verdicts for board in group)
    return Curve(
        title=f"{first.dataset}{options} · {first.size}px · {first.hardware} · {first.precision}",
        metric=metric, arrow=arrow, slug=f"curve-{first.slug}-{metric}", ranking=ranking,
        budgets=[b.budget_text for b in group],
        ticks=[(sx(b.budget["value"]), str(b.budget.get("label") or b.budget_text)) for b in group],
        y_range=(fmt(y_lo), fmt(y_hi)), lines=lines, has_verdicts=has_verdicts,
        crossovers=crossovers(group, metric) if has_verdicts else [],
    )


def budget_curves(boards: list[Board]) -> list[Curve]:
    """Per family of boards that differ only in budget: the ranking metric's curve, then every other metric
    with a direction (crossovers where the boards have verdicts on it: the ranking metric and ``--verdicts``)."""
    groups: dict[tuple, list[Board]] = {}
    for board in boards:
        if board.rank_by and isinstance(board.budget.get("value"), (int, float)) and board.budget["value"] > 0:
            groups.setdefault(_curve_key(board), []).append(board)
    curves = []
    for group in groups.values():
        group.sort(key=lambda b: b.budget["value"])
        ranking = {b.rank_by for b in group}
        if len(group) < 2 or len(ranking) != 1:
            continue
        rank_by = ranking.pop()
        columns = {c.name: c for board in group for c in board.columns if c.higher_is_better is not None}
        for name in [rank_by] + sorted(n for n in columns if n != rank_by):
            column = columns.get(name)
            curve = _curve(group, name, column.arrow if column else "", name == rank_by)
            if curve is not None:
                curves.append(curve)
    return curves


def curves_json(curves: list[Curve]) -> list[dict]:
    return [{"id": c.slug, "title": c.title, "metric": c.metric, "ranking": c.ranking, "budgets": c.budgets,
             "series": {line.label: line.values for line in c.lines}, "crossovers": c.crossovers,
             "crossovers_decidable": c.has_verdicts} for c in curves]
