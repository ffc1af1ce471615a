"""leaderboard.json, leaderboard.csv, verdicts.csv and findings.csv: the numbers of the pages, for machines.

leaderboard.json has everything: per board its key (dataset, options, size, budget, hardware class,
precision), the demo flag, the ranking metric, the rows (methods and references, flagged by
``kind``) with ranks and ties, every pairwise verdict and the findings. The CSV files are flat
views of it: one line per board x row (leaderboard.csv), per compared pair (verdicts.csv) and per
claim (findings.csv). Values are full precision (the pages round them); +inf is ``null`` with
``"infinite": true`` in JSON (JSON has no infinity) and ``inf`` in CSV.
"""

from __future__ import annotations

import csv
import io
import json

from bench.reports.board import Board
from bench.reports.cells import Cell, Column
from bench.reports.rows import Row
from bench.reports.verdicts import Comparison


def _cell(cell: Cell) -> dict:
    out = {"status": cell.status, "mean": None if cell.infinite else cell.mean, "ci95": cell.ci95, "std": cell.std,
           "n_seeds": cell.n_seeds}
    if cell.infinite:
        out["infinite"] = True
    if cell.status == "ok":
        out["best"] = cell.best
        if cell.warnings:
            out["warnings"] = cell.warnings
    else:
        out["reason"] = cell.reason
    return out


def _column(column: Column) -> dict:
    return {"name": column.name, "higher_is_better": column.higher_is_better, "description": column.description,
            "settings": column.settings, "n_images": column.n_images}


def _row(board: Board, row: Row, pages: dict[tuple[str, str], str]) -> dict:
    return {
        "kind": row.kind,
        "reference": row.runs[0].reference,
        "rank": row.rank,
        "tied_with": row.tied_with,
        "method": row.method,
        "label": row.label,
        "changed_options": row.changed_options,
        "method_plugin": row.plugin,
        "status": row.status,
        "reason": row.reason,
        "seeds": row.seeds,
        "seeds_ok": [r.seed for r in row.ok_runs],
        "demo": sorted({r.demo for r in row.runs if r.demo}),
        "vs_gray": dict(row.vs_gray.to_dict(), mark=row.gray_mark) if row.vs_gray else None,
        "fooling": row.fooling.to_dict() if row.fooling else None,  # a Turing test's, when one covers the row
        "page": pages[board.slug, row.slug],
        "metrics": {name: _cell(cell) for name, cell in row.cells.items()},
        "stats": {name: {k: getattr(cell, k) for k in ("mean", "std", "n_seeds")} for name, cell in row.stats.items()},
    }


def leaderboard(boards: list[Board], pages: dict[tuple[str, str], str], generated: str, generator: str,
                rank_by: str) -> dict:
    return {
        "generated": generated,
        "generator": generator,
        "rank_by_requested": rank_by,
        "boards": [
            {
                "id": board.slug,
                "title": board.title,
                "dataset": board.dataset,
                "dataset_options": board.dataset_options,
                "size": board.size,
                "budget": {k: board.budget.get(k) for k in ("kind", "value", "label")},
                "hardware": board.hardware,
                "precision": board.precision,
                "demo": bool(board.demo),
                "demo_reasons": board.demo,
                "rank_by": board.rank_by,
                "rank_note": board.rank_note,
                "metrics": [_column(c) for c in board.columns],
                "notes": board.notes,
                "footnotes": board.footnotes,
                "rows": [_row(board, row, pages) for row in board.rows],
                "verdicts": {name: [c.to_dict() for c in pairs] for name, pairs in board.verdicts.items()},
                "verdict_notes": board.verdict_notes,
                "findings": [finding.to_dict() for finding in board.findings],
            }
            for board in boards
        ],
    }


def leaderboard_json(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _csv(header: list[str], lines: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for line in lines:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in line])
    return buffer.getvalue()


FOOLING_COLUMNS = ["fooling_rate", "fooling_ci95_lo", "fooling_ci95_hi", "fooling_fooled", "fooling_votes",
                   "fooling_raters", "fooling_seed"]
BOARD_COLUMNS = ["board", "dataset", "dataset_options", "size", "budget", "hardware", "precision", "demo", "rank_by"]


def _board_fields(board: Board) -> list:
    return [board.slug, board.dataset, json.dumps(board.dataset_options, sort_keys=True), board.size,
            board.budget_text, board.hardware, board.precision, "; ".join(board.demo), board.rank_by]


def _interval(comparison: Comparison | None) -> list:
    if comparison is None:
        return [None] * 5
    lo, hi = comparison.ci95 or (None, None)
    return [comparison.verdict, comparison.difference, lo, hi, comparison.reason]


def leaderboard_csv(boards: list[Board]) -> str:
    metrics = list(dict.fromkeys(c.name for b in boards for c in b.columns))
    stats = list(dict.fromkeys(c.name for b in boards for c in b.stat_columns))
    header = BOARD_COLUMNS + ["kind", "rank", "tied_with", "method", "changed_options", "method_plugin", "status",
                              "reason", "seeds", "n_seeds_ok", "vs_gray", "vs_gray_verdict", "vs_gray_difference",
                              "vs_gray_ci95_lo", "vs_gray_ci95_hi", "vs_gray_reason"]
    for name in metrics:
        header += [f"{name}_{k}" for k in ("mean", "ci95_lo", "ci95_hi", "std", "n_seeds", "status", "reason")]
    header += [f"{name.replace(' ', '_').replace('/', '_per_')}_mean" for name in stats]
    fooling = any(board.has_fooling for board in boards)  # columns only when a Turing test is shown
    if fooling:
        header += FOOLING_COLUMNS
    lines = []
    for board in boards:
        for row in board.rows:
            line = _board_fields(board) + [
                row.kind, row.rank, "; ".join(row.tied_with), row.method, row.options_text, row.plugin, row.status,
                row.reason, " ".join(map(str, row.seeds)), len(row.ok_runs), row.gray_mark] + _interval(row.vs_gray)
            for name in metrics:
                cell = row.cells.get(name)
                if cell is None:
                    line += [None] * 7
                    continue
                lo, hi = cell.ci95 if cell.ci95 else (None, None)
                mean = "inf" if cell.infinite else cell.mean
                line += [mean, lo, hi, cell.std, cell.n_seeds, cell.status, cell.reason]
            line += [row.stats[name].mean for name in stats]
            if fooling:
                f = row.fooling
                line += [f.rate, *(f.ci95 or (None, None)), f.fooled, f.votes, f.raters, f.seed] if f else \
                    [None] * len(FOOLING_COLUMNS)
            lines.append(line)
    return _csv(header, lines)


def verdicts_csv(boards: list[Board]) -> str:
    header = BOARD_COLUMNS + ["metric", "left", "right", "verdict", "difference", "ci95_lo", "ci95_hi", "reason",
                              "better", "n_images", "n_seeds_left", "n_seeds_right"]
    lines = []
    for board in boards:
        for name, pairs in board.verdicts.items():
            for c in pairs:
                seeds = c.n_seeds or [None, None]
                lines.append(_board_fields(board) + [name, c.left, c.right] + _interval(c)
                             + [c.better, c.n_images, seeds[0], seeds[1]])
    return _csv(header, lines)


def findings_csv(boards: list[Board]) -> str:
    header = BOARD_COLUMNS + ["claim", "metric", "verdict", "deciding_intervals", "pairs_compared",
                              "pairs_not_comparable", "absent_methods"]
    lines = [_board_fields(board) + [f.claim.text, f.claim.metric, f.verdict, f.summary, len(f.compared),
                                     len(f.skipped), " ".join(f.missing)]
             for board in boards for f in board.findings]
    return _csv(header, lines)
