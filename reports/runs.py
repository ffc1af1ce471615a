"""Runs as the report sees them: loaded from one or more runs folders, normalised and merged.

A result.json may come from an older colorbench, a third-party plugin or a run that failed
before it produced anything, so every field is optional here: a missing or malformed field
becomes an empty value, never a crash.

Merging: the same run (dataset, size, budget, method, seed) found twice is kept once: the one
from the folder named later on the command line wins (within one folder, the later path in
sorted order), and a note on the board says which result replaced which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bench import store
from bench.errors import BenchError

STATUSES = ("ok", "failed", "skipped")


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def as_number(value) -> float | None:
    """A finite int/float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def as_int(value) -> int | None:
    number = as_number(value)
    return int(number) if number is not None and number.is_integer() else None


def as_text(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


@dataclass
class Run:
    """One result.json, normalised."""

    method: str
    dataset: str
    size: int | None
    seed: int | None
    status: str
    error: str | None
    budget: dict
    metric_details: dict[str, dict]
    source: str  # label of the runs folder it came from (its name, never an absolute path)
    path: str  # its folder relative to that runs folder, e.g. "flowers/baseline/seed0"
    directory: Path  # where its sample files are; used for copying, never rendered
    raw: dict = field(repr=False)  # the result as read, for the per-method page

    @property
    def where(self) -> str:
        return f"{self.source}/{self.path}"

    @property
    def board_key(self) -> tuple:
        return (self.dataset, self.size if self.size is not None else -1,
                as_text(self.budget.get("kind")) or "", as_number(self.budget.get("value")) or 0.0)

    @property
    def run_key(self) -> tuple:
        return self.board_key + (self.method, self.seed if self.seed is not None else -1)

    @property
    def sort_key(self) -> tuple:
        return (self.method, self.seed if self.seed is not None else -1, self.source, self.path)

    def section(self, name: str) -> dict:
        return as_dict(self.raw.get(name))

    def per_image(self, metric: str) -> list[float] | None:
        values = as_list(self.section("per_image").get(metric))
        numbers = [as_number(v) for v in values]
        return numbers if numbers and None not in numbers else None

    def image_names(self) -> list | None:
        return as_list(self.section("per_image").get("names")) or None


def _metric_details(result: dict) -> dict[str, dict]:
    """{name: detail} with a status and a finite value (or None); older results only had ``metrics``."""
    details = {}
    raw_details = as_dict(result.get("metric_details"))
    names = list(raw_details) + [n for n in as_dict(result.get("metrics")) if n not in raw_details]
    for name in names:
        detail = dict(as_dict(raw_details.get(name)))
        value = as_number(detail.get("value", as_dict(result.get("metrics")).get(name)))
        status = detail.get("status") if detail.get("status") in ("ok", "unavailable", "failed") else None
        if status is None:
            status = "ok" if value is not None else "failed"
        if status == "ok" and value is None:
            status, detail["reason"] = "failed", detail.get("reason") or "no value recorded"
        detail.update(status=status, value=value)
        details[str(name)] = detail
    return details


def normalise(result: dict, source: str, runs_dir: Path) -> Run:
    directory = Path(result["_dir"])
    status = result.get("status") if result.get("status") in STATUSES else "failed"
    error = as_text(result.get("error"))
    if result.get("status") not in STATUSES:
        error = error or f"unknown status {result.get('status')!r} in result.json"
    return Run(
        method=as_text(result.get("method")) or "?",
        dataset=as_text(result.get("dataset")) or "?",
        size=as_int(result.get("size")),
        seed=as_int(result.get("seed")),
        status=status,
        error=error,
        budget=as_dict(result.get("budget")),
        metric_details=_metric_details(result) if status == "ok" else {},
        source=source,
        path=directory.relative_to(runs_dir).as_posix() if directory != runs_dir else ".",
        directory=directory,
        raw=result,
    )


def source_labels(runs_dirs: list[Path]) -> list[str]:
    """A short, unique label per runs folder: its name (with #2, #3 for repeated names)."""
    labels, seen = [], {}
    for directory in runs_dirs:
        name = Path(directory).resolve().name or "runs"
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return labels


def load_runs(runs_dirs: list[Path]) -> tuple[list[Run], dict[tuple, list[str]]]:
    """Every run of every folder, duplicates merged; returns (runs, {board key: notes on replaced runs})."""
    if not runs_dirs:
        raise BenchError("no runs folder given: pass one or more with --runs")
    unique_dirs = list(dict.fromkeys(Path(d).resolve() for d in runs_dirs))  # the same folder twice counts once
    kept: dict[tuple, Run] = {}
    notes: dict[tuple, list[str]] = {}
    for runs_dir, label in zip(unique_dirs, source_labels(unique_dirs)):
        results = store.load_results(runs_dir)
        if not results:
            raise BenchError(f"no result.json files under {runs_dir}: run `bench run --out {runs_dir}` first")
        for result in results:
            run = normalise(result, label, runs_dir)
            previous = kept.get(run.run_key)
            if previous is not None:
                notes.setdefault(run.board_key, []).append(f"{run.method} seed {run.seed}: {previous.where} ({previous.status}) replaced by "
                              f"{run.where} ({run.status}); later --runs folders win")
            kept[run.run_key] = run
    return sorted(kept.values(), key=lambda r: (r.board_key, r.sort_key)), notes
