"""What a board shows at a glance, and what it folds away (nothing is dropped: the page holds every column and note).

- Columns: the ranking metric and the next two most-used metrics (``bench.metric.glance_metrics``, as in
  ``bench run``'s closing table) are shown; the board's other metrics and its run statistics fold behind switches the page
  remembers (``static/sort.js``), still in the HTML, still sortable, and in the CSV/JSON exports as before.
- Notes under the table, numbered once per board in reading order: every unavailable metric points at one
  note (grouped by reason, naming ``bench weights``), not a note per cell; a value below 0 of a metric that
  can be negative by construction (an unbiased KID-type estimator; a Fréchet distance at float precision)
  points at one explanation per family.
- A failed, interrupted or skipped row's reason in one line (``bench.reports.rows``); the full errors (paths, URLs) on
  demand.
"""

from __future__ import annotations

from bench.metric import glance_metrics
from bench.reports.cells import Cell, Column
from bench.reports.rows import Row

BELOW_ZERO = {
    ("kid", "kd-alex"): "an unbiased estimator (KID's MMD²): it can fall below 0 when the two sets are equally "
                        "distributed (the ground truth against itself is below 0 by construction); read a value "
                        "below 0 as 0 ± its interval",
    ("fid", "fd-alex"): "a Fréchet distance is never below 0 in exact arithmetic, but at float precision (a matrix "
                        "square root) a value at 0, such as the ground truth against itself, can come out just below "
                        "it, and an interval over few seeds can reach below 0; read such a value as 0 ± its interval",
}
WEIGHTS_FIX = "`bench weights` says which pretrained files are missing and where each goes"


def glance_columns(columns: list[Column], rank_by: str | None, rows: list[Row]) -> tuple[list[Column], list[Column]]:
    """(shown, folded): ``glance_metrics`` with values on the board, the ranking metric first; every other metric
    column, in its order, folded."""
    by_name = {c.name: c for c in columns}
    present = {name for name in by_name if any(r.cells[name].mean is not None for r in rows if not r.is_reference)}
    names = glance_metrics(rank_by if rank_by in by_name else None, present,
                           [c.name for c in columns if c.higher_is_better is not None])
    return [by_name[n] for n in names], [c for c in columns if c.name not in names]


def _below_zero_family(column: Column, cell: Cell) -> tuple[str, ...] | None:
    if cell.status != "ok" or cell.mean is None or cell.infinite:
        return None
    if min(cell.mean, cell.ci95[0] if cell.ci95 else cell.mean) >= 0:
        return None
    return next((family for family in BELOW_ZERO if column.name in family), None)


def number_notes(rows: list[Row], columns: list[Column]) -> list[str]:
    """Give each cell the numbers of its notes (``Cell.footnotes``) and return the board's notes, numbered in
    reading order (rows, the columns as shown); equal notes share a number, so each is said once."""
    unavailable: dict[str, list[str]] = {}  # reason -> the metrics it cost
    below: dict[tuple[str, ...], list[str]] = {}  # family -> its metrics with a value below 0
    for row in rows:
        for column in columns:
            cell = row.cells[column.name]
            if cell.status == "unavailable" and cell.note:
                names = unavailable.setdefault(cell.reason or "no reason given", [])
                names += [column.name] if column.name not in names else []
            family = _below_zero_family(column, cell)
            if family and column.name not in below.setdefault(family, []):
                below[family].append(column.name)
    missing = "; ".join(f"{', '.join(names)} unavailable: {reason}" for reason, names in unavailable.items())
    missing_note = f"{missing}. {WEIGHTS_FIX}" if missing else None
    notes: list[str] = []
    for row in rows:
        for column in columns:
            cell = row.cells[column.name]
            texts = [missing_note if cell.status == "unavailable" and cell.note else cell.note]
            family = _below_zero_family(column, cell)
            if family:
                texts.append(f"{', '.join(below[family])} below 0: {BELOW_ZERO[family]}")
            for text in filter(None, texts):
                if text not in notes:
                    notes.append(text)
                cell.footnotes.append(notes.index(text) + 1)
    return notes
