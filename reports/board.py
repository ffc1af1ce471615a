"""Leaderboards: runs grouped into boards, seeds aggregated per method, ranked, best values marked.

A board is one (dataset, image size, budget); a row is one method with its seeds aggregated:

- mean: the mean over the seeds that produced the metric;
- std: the sample standard deviation (ddof=1) across those seeds, when there are two or more;
- 95 % CI: for one seed, that run's own percentile-bootstrap interval over test images; for
  several, the same bootstrap over the per-image values averaged across seeds (so it measures
  test-set uncertainty, and std measures seed-to-seed spread). A set-level metric without
  per-image values (e.g. FID) over several seeds gets no CI, only the std.

Ranking: by the primary metric, the first metric column (in the order the runs recorded them,
``psnr`` for built-in runs) that has a direction and at least one value; methods without a
value follow by name, then failed, then skipped methods. Every column stays sortable in the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.stats import aggregate_seeds, bootstrap_ci
from bench.store import safe_name
from bench.reports.runs import Run, as_list, as_number, as_text


def fmt(value, digits: int = 4) -> str:
    """Stable short text for a number: 4 significant digits, no exponent below 10**digits."""
    if value is None:
        return "—"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def budget_text(budget: dict) -> str:
    kind, value, label = budget.get("kind"), as_number(budget.get("value")), as_text(budget.get("label"))
    if value is None:
        canonical = ""
    elif kind == "steps":
        canonical = f"{value:.0f} steps"
    else:
        canonical = f"{fmt(value)} s"
    if label and canonical and label != canonical:
        return f"{label} ({canonical})"
    return label or canonical or "unknown budget"


@dataclass
class Column:
    name: str
    higher_is_better: bool | None = None
    description: str = ""
    settings: list[str] = field(default_factory=list)
    n_images: list[int] = field(default_factory=list)

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓"}.get(self.higher_is_better, "")

    @property
    def first_sort(self) -> str:
        """The direction a first click sorts in: best first."""
        return "ascending" if self.higher_is_better is False else "descending"


@dataclass
class Cell:
    status: str  # ok | unavailable | failed | missing
    mean: float | None = None
    std: float | None = None
    ci95: list[float] | None = None
    n_seeds: int = 0
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    best: bool = False
    note: str | None = None  # explained under the table...
    footnote: int | None = None  # ...as note number ``footnote`` (numbered in display order)

    @property
    def text(self) -> str:
        return fmt(self.mean) if self.status == "ok" else ("—" if self.status == "missing" else self.status)

    @property
    def sort_value(self) -> str:
        return repr(self.mean) if self.mean is not None else ""


@dataclass
class Row:
    method: str
    slug: str
    runs: list[Run]
    status: str
    reason: str | None
    cells: dict[str, Cell]
    stats: dict[str, Cell]
    rank: int | None = None

    @property
    def ok_runs(self) -> list[Run]:
        return [r for r in self.runs if r.status == "ok"]

    @property
    def seeds(self) -> list:
        return [r.seed for r in self.runs]

    @property
    def description(self) -> str:
        return next((as_text(r.raw.get("method_description")) for r in self.runs if r.raw.get("method_description")), "")


@dataclass
class Board:
    dataset: str
    size: int | None
    budget: dict
    slug: str
    columns: list[Column]
    stat_columns: list[Column]
    rows: list[Row]
    primary: str | None
    footnotes: list[str]
    notes: list[str]  # about the board as a whole (e.g. merged duplicates)
    runs: list[Run]

    @property
    def budget_text(self) -> str:
        return budget_text(self.budget)

    def numbered_notes(self, row: Row | None = None) -> list[tuple[int, str]]:
        """(number, text) of the notes under the table; only those a row's cells refer to, given a row."""
        wanted = {c.footnote for c in row.cells.values()} if row else None
        return [(n, text) for n, text in enumerate(self.footnotes, start=1) if wanted is None or n in wanted]

    @property
    def title(self) -> str:
        size = f"{self.size}px" if self.size is not None else "size unknown"
        return f"{self.dataset} · {size} · budget {self.budget_text}"


STAT_COLUMNS = [
    Column("steps", description="training steps taken within the budget"),
    Column("train img/s", description="training images per second"),
    Column("infer img/s", description="test images colorized per second"),
]


def _stat_values(run: Run) -> dict[str, float | None]:
    timings = run.section("timings")
    return {
        "steps": as_number(run.budget.get("steps", timings.get("steps"))),
        "train img/s": as_number(timings.get("train_images_per_s")),
        "infer img/s": as_number(timings.get("infer_images_per_s")),
    }


def _columns(runs: list[Run]) -> list[Column]:
    columns: dict[str, Column] = {}
    for run in sorted(runs, key=lambda r: r.sort_key):
        for name, detail in run.metric_details.items():
            column = columns.setdefault(name, Column(name))
            if column.higher_is_better is None and isinstance(detail.get("higher_is_better"), bool):
                column.higher_is_better = detail["higher_is_better"]
            column.description = column.description or as_text(detail.get("description")) or ""
            settings = as_text(detail.get("settings"))
            if settings and settings not in column.settings:
                column.settings.append(settings)
            n = detail.get("n")
            if isinstance(n, int) and n not in column.n_images:
                column.n_images.append(n)
    return list(columns.values())


def _seed_ci(name: str, runs: list[Run]) -> list[float] | None:
    """The per-image bootstrap CI of the seed-averaged values (see the module docstring)."""
    if len(runs) == 1:
        ci = as_list(runs[0].metric_details[name].get("ci95"))
        return [float(v) for v in ci] if len(ci) == 2 and None not in map(as_number, ci) else None
    per_image = [r.per_image(name) for r in runs]
    names = [r.image_names() for r in runs]
    if any(v is None for v in per_image) or len({len(v) for v in per_image}) != 1 or any(n != names[0] for n in names):
        return None
    averaged = [math.fsum(values) / len(values) for values in zip(*per_image)]
    return bootstrap_ci(averaged)


def _metric_cell(column: Column, ok_runs: list[Run]) -> Cell:
    entries = [(r, r.metric_details.get(column.name)) for r in ok_runs]
    scored = [r for r, d in entries if d and d["status"] == "ok"]
    problems = [(r, d) for r, d in entries if not d or d["status"] != "ok"]
    if not scored:
        status = next((d["status"] for _, d in problems if d), "missing")
        reasons = list(dict.fromkeys(as_text(d.get("reason")) or "" for _, d in problems if d and d["status"] == status))
        reason = "; ".join(r for r in reasons if r) or ("not recorded" if status == "missing" else "no reason given")
        return Cell(status, reason=reason, note=f"{column.name} {status}: {reason}" if ok_runs else None)
    stats = aggregate_seeds(r.metric_details[column.name]["value"] for r in scored)
    warnings = list(dict.fromkeys(
        as_text(r.metric_details[column.name].get("warning")) for r in scored if r.metric_details[column.name].get("warning")
    ))
    cell = Cell("ok", mean=stats["mean"], std=stats["std"], ci95=_seed_ci(column.name, scored),
                n_seeds=stats["n"], warnings=warnings)
    notes = [f"{column.name}: {w}" for w in warnings]
    if problems:
        missing = ", ".join(f"seed {r.seed}: {d['status'] if d else 'not computed'}" for r, d in problems)
        notes.append(f"{column.name}: computed on {len(scored)} of {len(ok_runs)} seeds ({missing})")
    cell.note = "; ".join(notes) or None
    return cell


def _row(method: str, slug: str, runs: list[Run], columns: list[Column]) -> Row:
    ok_runs = [r for r in runs if r.status == "ok"]
    problems = [r for r in runs if r.status != "ok"]
    reasons = "; ".join(dict.fromkeys(f"seed {r.seed} {r.status}: {r.error or 'no reason given'}" for r in problems))
    if ok_runs:
        status = "ok"
    else:
        status = "skipped" if all(r.status == "skipped" for r in runs) else "failed"
    stats = {}
    for column in STAT_COLUMNS:
        values = [v for v in (_stat_values(r)[column.name] for r in ok_runs) if v is not None]
        aggregate = aggregate_seeds(values)
        stats[column.name] = Cell("ok" if values else "missing", mean=aggregate["mean"], std=aggregate["std"],
                                  n_seeds=aggregate["n"])
    cells = {c.name: _metric_cell(c, ok_runs) for c in columns}
    return Row(method, slug, runs, status, reasons or None, cells, stats)


def _mark_best(columns: list[Column], rows: list[Row]) -> None:
    """Best per column; ties at the displayed precision are all marked."""
    for column in columns:
        cells = [row.cells[column.name] for row in rows if row.cells[column.name].status == "ok"]
        if column.higher_is_better is None or not cells:
            continue
        pick = max if column.higher_is_better else min
        best_text = pick(cells, key=lambda c: c.mean).text
        for cell in cells:
            cell.best = cell.text == best_text


def _rank(rows: list[Row], primary: Column | None) -> list[Row]:
    def key(row: Row):
        cell = row.cells.get(primary.name) if primary else None
        if row.status != "ok":
            return (2 if row.status == "failed" else 3, 0.0, row.method)
        if cell is None or cell.mean is None:
            return (1, 0.0, row.method)
        return (0, -cell.mean if primary.higher_is_better else cell.mean, row.method)

    ranked = sorted(rows, key=key)
    for position, row in enumerate(ranked, start=1):
        cell = row.cells.get(primary.name) if primary else None
        row.rank = position if cell is not None and cell.mean is not None else None
    return ranked


def _number_notes(rows: list[Row], columns: list[Column]) -> list[str]:
    """Number the cells' notes in reading order (ranked rows, left to right); equal notes share a number."""
    notes: list[str] = []
    for row in rows:
        for column in columns:
            cell = row.cells[column.name]
            if cell.note:
                if cell.note not in notes:
                    notes.append(cell.note)
                cell.footnote = notes.index(cell.note) + 1
    return notes


def unique_slug(text: str, taken: set[str]) -> str:
    base = safe_name(text)
    slug, k = base, 1
    while slug.lower() in taken:  # lower: also unique on case-insensitive file systems
        k += 1
        slug = f"{base}-{k}"
    taken.add(slug.lower())
    return slug


def build_boards(runs: list[Run], merge_notes: dict[tuple, list[str]]) -> list[Board]:
    grouped: dict[tuple, list[Run]] = {}
    for run in runs:
        grouped.setdefault(run.board_key, []).append(run)
    boards, board_slugs = [], set()
    for key in sorted(grouped):
        board_runs = sorted(grouped[key], key=lambda r: r.sort_key)
        first = board_runs[0]
        columns = _columns(board_runs)
        by_method: dict[str, list[Run]] = {}
        for run in board_runs:
            by_method.setdefault(run.method, []).append(run)
        method_slugs: set[str] = set()
        rows = [_row(m, unique_slug(m, method_slugs), rs, columns) for m, rs in sorted(by_method.items())]
        primary = next(
            (c for c in columns if c.higher_is_better is not None and any(r.cells[c.name].mean is not None for r in rows)),
            None,
        )
        _mark_best(columns, rows)
        rows = _rank(rows, primary)
        size = f"{first.size}px" if first.size is not None else "any"
        boards.append(Board(
            dataset=first.dataset, size=first.size, budget=first.budget,
            slug=unique_slug(f"{first.dataset}-{size}-{first.budget.get('label') or budget_text(first.budget)}", board_slugs),
            columns=columns, stat_columns=STAT_COLUMNS, rows=rows,
            primary=primary.name if primary else None, footnotes=_number_notes(rows, columns),
            notes=merge_notes.get(key, []), runs=board_runs,
        ))
    return boards
