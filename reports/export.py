"""leaderboard.json and leaderboard.csv: the numbers of the HTML tables, for machines.

One entry (JSON) or line (CSV) per board x method; values are full precision (the pages round them).
"""

from __future__ import annotations

import csv
import io
import json

from bench.reports.board import Board, Cell, Column


def _cell(cell: Cell) -> dict:
    out = {"status": cell.status, "mean": cell.mean, "ci95": cell.ci95, "std": cell.std, "n_seeds": cell.n_seeds}
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


def leaderboard(boards: list[Board], pages: dict[tuple[str, str], str], generated: str, generator: str) -> dict:
    return {
        "generated": generated,
        "generator": generator,
        "boards": [
            {
                "id": board.slug,
                "dataset": board.dataset,
                "size": board.size,
                "budget": {k: board.budget.get(k) for k in ("kind", "value", "label")},
                "primary_metric": board.primary,
                "metrics": [_column(c) for c in board.columns],
                "notes": board.notes,
                "footnotes": board.footnotes,
                "rows": [
                    {
                        "rank": row.rank,
                        "method": row.method,
                        "status": row.status,
                        "reason": row.reason,
                        "seeds": row.seeds,
                        "seeds_ok": [r.seed for r in row.ok_runs],
                        "page": pages[board.slug, row.slug],
                        "metrics": {name: _cell(cell) for name, cell in row.cells.items()},
                        "stats": {name: {k: getattr(cell, k) for k in ("mean", "std", "n_seeds")}
                                  for name, cell in row.stats.items()},
                    }
                    for row in board.rows
                ],
            }
            for board in boards
        ],
    }


def leaderboard_json(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def leaderboard_csv(boards: list[Board]) -> str:
    metrics = list(dict.fromkeys(c.name for b in boards for c in b.columns))
    stats = list(dict.fromkeys(c.name for b in boards for c in b.stat_columns))
    header = ["dataset", "size", "budget", "rank", "method", "status", "reason", "seeds", "n_seeds_ok"]
    for name in metrics:
        header += [f"{name}_{k}" for k in ("mean", "ci95_lo", "ci95_hi", "std", "n_seeds", "status", "reason")]
    header += [f"{name.replace(' ', '_').replace('/', '_per_')}_mean" for name in stats]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for board in boards:
        for row in board.rows:
            line = [board.dataset, board.size, board.budget_text, row.rank, row.method, row.status, row.reason,
                    " ".join(map(str, row.seeds)), len(row.ok_runs)]
            for name in metrics:
                cell = row.cells.get(name)
                if cell is None:
                    line += [None] * 7
                    continue
                lo, hi = cell.ci95 if cell.ci95 else (None, None)
                line += [cell.mean, lo, hi, cell.std, cell.n_seeds, cell.status, cell.reason]
            line += [row.stats[name].mean for name in stats]
            writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in line])
    return buffer.getvalue()
