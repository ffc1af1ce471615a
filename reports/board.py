"""Leaderboards: runs grouped into boards, seeds merged into rows, ranked with ties, references attached.

A board compares like with like: one (dataset, dataset options, image size, budget, hardware class,
precision). A row is one method with one set of changed options (options that differ from the
method's defaults are shown on it); its seeds merge into it (mean, std across seeds and 95 % CI as
``bench.reports.cells`` computes them).

Reference rows (gray input, ground truth) of the same test images join every such board; they are
scored like methods but never ranked, never marked best, and sit where their value falls.

Ranking: by one metric per board, ``--rank-by`` (default LPIPS); when it has no values on a board,
the first metric with a direction and a value, and the board says so. Ranks and ties come from the
verdicts (``bench.reports.verdicts``: intervals over seeds and paired test images, simultaneous over the
board's comparisons on the metric); each method is also checked against the gray input, in the same family.
★ marks every method no other beats distinguishably in a column.
Methods without a value follow by name, then failed, interrupted and skipped ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.metric import DEFAULT_RANK_BY
from bench.reports import findings as claims
from bench.reports.cells import STAT_COLUMNS, Cell, Column, budget_text, metric_cell, metric_columns, stat_values
from bench.reports.layout import glance_columns, number_notes
from bench.reports.rows import Row, problem_texts
from bench.reports.runs import Run, options_text
from bench.reports.verdicts import Comparison, all_pairs, compare, rank_with_ties, row_sample, untested_summary
from bench.stats import aggregate_seeds
from bench.store import safe_name

STATUS_ORDER = {"failed": 2, "interrupted": 3, "skipped": 4}


@dataclass
class Board:
    dataset: str
    dataset_options: dict
    size: int | None
    budget: dict
    hardware: str
    precision: str
    slug: str
    columns: list[Column]
    stat_columns: list[Column]
    rows: list[Row]  # ranked methods with the references where their value falls, then the rest
    rank_by: str | None  # the metric the board is ranked by
    rank_note: str | None  # why it is not the requested one
    footnotes: list[str]
    notes: list[str]  # about the board as a whole (e.g. merged duplicates)
    runs: list[Run]
    demo: list[str] = field(default_factory=list)  # why (some of) its runs are only demos
    verdicts: dict[str, list[Comparison]] = field(default_factory=dict)  # metric -> every pair of methods
    verdict_notes: list[str] = field(default_factory=list)
    findings: list = field(default_factory=list)  # bench.reports.findings.Finding
    shown_columns: list[Column] = field(default_factory=list)  # the metric columns at a glance (ranking first)
    folded_columns: list[Column] = field(default_factory=list)  # the other metric columns, one click away

    @property
    def budget_text(self) -> str:
        return budget_text(self.budget)

    @property
    def method_rows(self) -> list[Row]:
        return [r for r in self.rows if not r.is_reference]

    @property
    def reference_rows(self) -> list[Row]:
        return [r for r in self.rows if r.is_reference]

    @property
    def rank_column(self) -> Column | None:
        return next((c for c in self.columns if c.name == self.rank_by), None)

    @property
    def has_fooling(self) -> bool:
        return any(r.fooling is not None for r in self.rows)

    @property
    def seed_note(self) -> str | None:
        """Why some verdicts are missing: methods trained with one seed have no training variance."""
        single = [r.label for r in self.method_rows if r.status == "ok" and len(r.ok_runs) == 1]
        if not single:
            return None
        which = "Every method has" if len(single) == len([r for r in self.method_rows if r.status == "ok"]) else \
            f"{len(single)} methods ({', '.join(single)}) have"
        return (f"{which} one seed: one training run measures nothing of how much another seed would change its "
                f"scores, so their verdicts say “needs seeds” and they share ranks; run `bench run --seeds 3` (the "
                f"default) or more")

    @property
    def test_time_note(self) -> str | None:
        """Which methods are random at test time, how many draws were scored, the spread of the ranking metric."""
        parts = []
        for row in self.method_rows:
            drawn = [(r.raw.get("test_time") or {}) for r in row.ok_runs]
            if not any(d.get("random") for d in drawn):
                continue
            draws = sorted({d.get("draws", 1) for d in drawn})
            spreads = [d["spread"][self.rank_by] for d in drawn if self.rank_by in (d.get("spread") or {})]
            text = f"{row.label} ({'/'.join(map(str, draws))} draw{'s' if draws[-1] > 1 else ''}"
            if spreads:
                text += f"; {self.rank_by} varies by {sum(spreads) / len(spreads):.3g} (SD) from draw to draw"
            parts.append(text + ")")
        if not parts:
            return None
        return ("Random at test time: " + ", ".join(parts) + ". Each image's output is one seeded draw (run seed, "
                "image), so the intervals and verdicts already include this noise; the board ranks draw 0, and "
                "`bench run --test-draws N` records the spread over N draws")

    @property
    def has_gray(self) -> bool:
        return any(r.runs[0].reference == "gray" for r in self.reference_rows)

    def numbered_notes(self, row: Row | None = None) -> list[tuple[int, str]]:
        """(number, text) of the notes under the table; only those a row's cells refer to, given a row."""
        wanted = {n for c in row.cells.values() for n in c.footnotes} if row else None
        return [(n, text) for n, text in enumerate(self.footnotes, start=1) if wanted is None or n in wanted]

    @property
    def title(self) -> str:
        size = f"{self.size}px" if self.size is not None else "size unknown"
        options = f" ({options_text(self.dataset_options)})" if self.dataset_options else ""
        return f"{self.dataset}{options} · {size} · budget {self.budget_text} · {self.hardware} · {self.precision}"


def _row(runs: list[Run], slug: str, columns: list[Column]) -> Row:
    ok_runs = [r for r in runs if r.status == "ok"]
    reasons = "; ".join(problem_texts(runs))
    if ok_runs:
        status = "ok"
    else:
        statuses = {r.status for r in runs}
        status = statuses.pop() if len(statuses) == 1 else "failed"
    stats = {}
    for column in STAT_COLUMNS:
        values = [v for v in (stat_values(r)[column.name] for r in ok_runs) if v is not None]
        aggregate = aggregate_seeds(values)
        stats[column.name] = Cell("ok" if values else "missing", mean=aggregate["mean"], std=aggregate["std"],
                                  n_seeds=aggregate["n"])
    cells = {c.name: metric_cell(c, ok_runs) for c in columns}
    first = runs[0]
    return Row(first.method, first.label, slug, runs, status, reasons or None, cells, stats, kind=first.kind)


def _mark_best(columns: list[Column], rows: list[Row], rank_column: Column | None) -> None:
    """★ per column: every method that no other method beats distinguishably on it (rank 1 by that column's
    own verdicts, simultaneous over its pairs), so methods tied for best are all marked; never a reference.
    The ranking column uses the board's ranks."""
    for column in columns:
        if column.higher_is_better is None:
            continue
        present = [r for r in rows if not r.is_reference and r.status == "ok" and r.cells[column.name].mean is not None]
        if not present:
            continue
        if column is rank_column:
            ranks = [r.rank for r in present]  # ranked already
        else:
            present.sort(key=lambda r: -r.cells[column.name].mean if column.higher_is_better else r.cells[column.name].mean)
            entries = [(r.label, row_sample(r.ok_runs, column.name)) for r in present]
            ranks, _ = rank_with_ties([r.label for r in present], [r.cells[column.name].mean for r in present],
                                      column.higher_is_better, all_pairs(column.name, column.higher_is_better, entries))
        for row, rank in zip(present, ranks):
            row.cells[column.name].best = rank == 1


def _has_value(rows: list[Row], column: Column) -> bool:
    return any(r.cells[column.name].mean is not None for r in rows if not r.is_reference)


def choose_rank_metric(columns: list[Column], rows: list[Row], requested: str) -> tuple[Column | None, str | None]:
    """The board's ranking metric and, when it is not ``requested``, why (said on the board)."""
    wanted = next((c for c in columns if c.name == requested), None)
    if wanted is not None and wanted.higher_is_better is not None and _has_value(rows, wanted):
        return wanted, None
    fallback = next((c for c in columns if c.higher_is_better is not None and _has_value(rows, c)), None)
    if wanted is None:
        why = "not recorded by these runs"
    else:
        reasons = [r.cells[requested].reason for r in rows if not r.is_reference and r.cells[requested].reason]
        why = f"{wanted.name} {reasons[0]}" if reasons else "no values"
    if fallback is None:
        return None, f"{requested} has no values on this board ({why}), and no other metric with a direction has"
    return fallback, f"{requested} has no values on this board ({why}), so it is ranked by {fallback.name} instead"


def _order_key(column: Column | None):
    def key(row: Row):
        cell = row.cells.get(column.name) if column else None
        if row.status != "ok":
            return (STATUS_ORDER.get(row.status, 2), 0.0, row.is_reference, row.label)
        if cell is None or cell.mean is None:
            return (1, 0.0, row.is_reference, row.label)
        return (0, -cell.mean if column.higher_is_better else cell.mean, row.is_reference, row.label)
    return key


def _rank(rows: list[Row], column: Column | None) -> tuple[list[Row], list[Comparison]]:
    """Rows in display order (references where their value falls); ranks and ties of the methods set."""
    ordered = sorted(rows, key=_order_key(column))
    if column is None:
        return ordered, []
    ranked = [r for r in ordered if not r.is_reference and r.status == "ok" and r.cells[column.name].mean is not None]
    entries = [(r.label, row_sample(r.ok_runs, column.name)) for r in ranked]
    gray = next((r for r in rows if r.is_reference and r.runs[0].reference == "gray"), None)
    gray_sample = (gray.label, row_sample(gray.ok_runs, column.name)) if gray else None
    # One family: every pair of methods and every method against the gray input, simultaneous at 95 %.
    family = len(entries) * (len(entries) - 1) // 2 + (len(entries) if gray_sample else 0)
    comparisons = all_pairs(column.name, column.higher_is_better, entries, tests=family)
    ranks, ties = rank_with_ties([r.label for r in ranked], [r.cells[column.name].mean for r in ranked],
                                 column.higher_is_better, comparisons)
    for row, rank, entry in zip(ranked, ranks, entries):
        row.rank, row.tied_with = rank, ties[row.label]
        if gray_sample:
            row.vs_gray = compare(column.name, column.higher_is_better, entry, gray_sample, tests=family)
    return ordered, comparisons


def _verdicts(columns: list[Column], rows: list[Row], rank_column: Column | None, ranked_pairs: list[Comparison],
              extra: list[str]) -> tuple[dict[str, list[Comparison]], list[str]]:
    out, notes = {}, []
    if rank_column is not None:
        out[rank_column.name] = ranked_pairs
    methods = [r for r in rows if not r.is_reference and r.status == "ok"]
    for name in extra:
        column = next((c for c in columns if c.name == name), None)
        if name in out:
            continue
        if column is None or not _has_value(rows, column):
            notes.append(f"verdicts on {name}: no values on this board")
            continue
        present = [r for r in methods if r.cells[name].mean is not None]
        out[name] = all_pairs(name, column.higher_is_better, [(r.label, row_sample(r.ok_runs, name)) for r in present])
    for name, pairs in out.items():
        untested = [c for c in pairs if not c.comparable]
        if untested:
            reasons = untested_summary(untested)
            ordered = " (ranked by their means)" if rank_column is not None and name == rank_column.name else ""
            notes.append(f"{name}: {len(untested)} of {len(pairs)} pairs could not be compared{ordered}: {reasons}")
    return out, notes


def unique_slug(text: str, taken: set[str]) -> str:
    base = safe_name(text)
    slug, k = base, 1
    while slug.lower() in taken:  # lower: also unique on case-insensitive file systems
        k += 1
        slug = f"{base}-{k}"
    taken.add(slug.lower())
    return slug


def _board(runs: list[Run], references: list[Run], notes: list[str], rank_by: str,
           verdict_metrics: list[str], board_slugs: set[str]) -> Board:
    first = runs[0]
    columns = metric_columns(runs + references)
    by_row: dict[tuple, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.sort_key) + sorted(references, key=lambda r: r.sort_key):
        by_row.setdefault((run.kind,) + run.row_key, []).append(run)
    slugs: set[str] = set()
    rows = [_row(rs, unique_slug(rs[0].label, slugs), columns) for rs in by_row.values()]
    rank_column, rank_note = choose_rank_metric(columns, rows, rank_by)
    rows, ranked_pairs = _rank(rows, rank_column)
    _mark_best(columns, rows, rank_column)
    verdicts, verdict_notes = _verdicts(columns, rows, rank_column, ranked_pairs, verdict_metrics)
    shown, folded = glance_columns(columns, rank_column.name if rank_column else None, rows)
    by_method: dict[str, list[tuple[str, list[Run]]]] = {}
    for row in rows:
        if not row.is_reference and row.status == "ok":
            by_method.setdefault(row.method, []).append((row.label, row.ok_runs))
    size = f"{first.size}px" if first.size is not None else "any"
    budget = first.budget.get("label") or budget_text(first.budget)
    return Board(
        dataset=first.dataset, dataset_options=first.dataset_options, size=first.size, budget=first.budget,
        hardware=first.hardware, precision=first.precision,
        slug=unique_slug(f"{first.dataset}-{size}-{budget}-{first.hardware}-{first.precision}", board_slugs),
        columns=columns, stat_columns=STAT_COLUMNS, rows=rows,
        rank_by=rank_column.name if rank_column else None, rank_note=rank_note,
        footnotes=number_notes(rows, shown + folded), notes=notes, runs=runs + references,
        demo=sorted({r.demo for r in runs + references if r.demo}),
        verdicts=verdicts, verdict_notes=verdict_notes, findings=claims.findings(by_method),
        shown_columns=shown, folded_columns=folded,
    )


def build_boards(runs: list[Run], merge_notes: dict[tuple, list[str]], *, rank_by: str = DEFAULT_RANK_BY,
                 verdict_metrics: list[str] = ()) -> list[Board]:
    """One board per board key of the method runs, each with the references of its test images."""
    grouped: dict[tuple, list[Run]] = {}
    references: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.is_reference:
            references.setdefault(run.test_set_key, []).append(run)
        else:
            grouped.setdefault(run.board_key, []).append(run)
    boards, board_slugs = [], set()
    for key in sorted(grouped):
        board_runs = sorted(grouped[key], key=lambda r: r.sort_key)
        test_set = board_runs[0].test_set_key
        notes = merge_notes.get(("method",) + key, []) + merge_notes.get(("reference",) + test_set, [])
        boards.append(_board(board_runs, references.get(test_set, []), notes, rank_by, list(verdict_metrics),
                             board_slugs))
    return boards
