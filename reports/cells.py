"""The numbers of a leaderboard row: metric columns and cells, seeds merged.

- mean: the mean over the seeds that produced the metric;
- std: the sample standard deviation (ddof=1) across those seeds, when there are two or more;
- 95 % CI: for one seed, that run's own percentile-bootstrap interval over test images (training
  randomness is not measured by one seed); for several, a t interval over seeds and test images
  (``bench.stats.mean_interval``: the spread of the per-seed means plus the images' spread), the
  same variance the board's verdicts use. A set-level metric without per-image values (e.g. FID)
  over several seeds gets the t interval of its per-seed values.
- The ground truth's PSNR against itself is +inf: shown as ∞ (the ceiling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.reports.runs import Run, as_list, as_number, as_text
from bench.stats import aggregate_seeds, mean_interval


def fmt(value, digits: int = 4) -> str:
    """Stable short text for a number: 4 significant digits, no exponent below 10**digits; ∞ for +inf."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
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
    mean: float | None = None  # +inf for the ground truth's PSNR
    std: float | None = None
    ci95: list[float] | None = None
    n_seeds: int = 0
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    best: bool = False
    note: str | None = None  # explained under the table...
    footnotes: list[int] = field(default_factory=list)  # ...with the board's other notes (bench.reports.layout)

    @property
    def infinite(self) -> bool:
        return self.mean is not None and math.isinf(self.mean)

    @property
    def text(self) -> str:
        """The value; "—" for none (an unavailable metric's note says why, once per board), else the status."""
        return fmt(self.mean) if self.status == "ok" else ("—" if self.status in ("missing", "unavailable") else self.status)

    @property
    def sort_value(self) -> str:
        if self.infinite:
            return "Infinity"  # what the page's sort script parses as +inf
        return repr(self.mean) if self.mean is not None else ""


STAT_COLUMNS = [
    Column("batch", description="training batch size (images per step; an unpaired method also draws as many colour images)"),
    Column("steps", description="training steps taken within the budget"),
    Column("images", description="training images the steps consumed (every image a step draws)"),
    Column("epochs", description="passes over the training split: images / training images"),
    Column("train img/s", description="training images per second"),
    Column("TFLOP/s", description="achieved training TFLOP/s (FLOPs of a step counted once x steps / time)"),
    Column("test GFLOP/img", description="FLOPs of colorizing one test image (its test-time cost)"),
    Column("eval img/s", description="test images colorized and scored per second (one pass)"),
]


def stat_values(run: Run) -> dict[str, float | None]:
    timings, budget = run.section("timings"), run.budget
    flops = as_number(timings.get("test_flops_per_image"))
    return {
        "batch": as_number(timings.get("batch_size")),
        "steps": as_number(budget.get("steps", timings.get("steps"))),
        "images": as_number(budget.get("images")),
        "epochs": as_number(budget.get("epochs")),
        "train img/s": as_number(timings.get("train_images_per_s")),
        "TFLOP/s": as_number(timings.get("achieved_tflops")),
        "test GFLOP/img": flops / 1e9 if flops is not None else None,
        "eval img/s": as_number(timings.get("eval_images_per_s")),
    }


def metric_columns(runs: list[Run]) -> list[Column]:
    columns: dict[str, Column] = {}
    for run in sorted(runs, key=lambda r: (r.is_reference, r.sort_key)):
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
    """The row's interval (see the module docstring)."""
    if len(runs) == 1:
        ci = as_list(runs[0].metric_details[name].get("ci95"))
        return [float(v) for v in ci] if len(ci) == 2 and None not in map(as_number, ci) else None
    per_image = [r.per_image(name) for r in runs]
    names = [r.image_names() for r in runs]
    if all(v is None for v in per_image):  # set-level: one value per seed
        values = [[r.metric_details[name]["value"]] for r in runs]
    elif any(v is None for v in per_image) or len({len(v) for v in per_image}) != 1 or any(n != names[0] for n in names):
        return None
    else:
        values = per_image
    interval = mean_interval(values, fixed=all(r.is_reference for r in runs))
    return interval["ci95"] if interval else None


def metric_cell(column: Column, ok_runs: list[Run]) -> Cell:
    entries = [(r, r.metric_details.get(column.name)) for r in ok_runs]
    scored = [r for r, d in entries if d and d["status"] == "ok"]
    problems = [(r, d) for r, d in entries if not d or d["status"] != "ok"]
    if not scored:
        status = next((d["status"] for _, d in problems if d), "missing")
        reasons = list(dict.fromkeys(as_text(d.get("reason")) or "" for _, d in problems if d and d["status"] == status))
        reason = "; ".join(r for r in reasons if r) or ("not recorded" if status == "missing" else "no reason given")
        return Cell(status, reason=reason, note=f"{column.name} {status}: {reason}" if ok_runs else None)
    values = [r.metric_details[column.name]["value"] for r in scored]
    if any(math.isinf(v) for v in values):  # the ground truth scored against itself: the ceiling
        return Cell("ok", mean=math.inf, n_seeds=len(values), note=f"{column.name} ∞: identical images (the ceiling)")
    stats = aggregate_seeds(values)
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
