"""Runs as the report sees them: loaded from one or more runs folders, normalised and merged.

A result.json may come from an older colorbench, a third-party plugin or a run that failed
before it produced anything, so every field is optional here: a missing or malformed field
becomes an empty value, never a crash. Schema 1 results (no identity, hardware, precision or
kind) read as method runs on ``environment.device`` x1, in fp32, with default options.

A run is either a method run or a *reference* (``kind: "reference"``: the gray input, ab = 0, or
the ground truth itself, scored with the same metric code on the same test images). References
depend on the test images only and attach to every board with the same dataset, dataset options
and size.

A result.json that cannot be read (truncated, not UTF-8, not a result object) is left out with a
one-line warning; the rest render.

Merging: the same run (its ``run_key``; for schema 1 results dataset, size, budget, method and
seed) found twice is kept once: the one from the folder named later on the command line wins
(within one folder, the later path in sorted order), and a note on the board says which result
replaced which.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench import store
from bench.errors import BenchError
from bench.store.identity import hardware_class
from bench.progress import warn

STATUSES = ("ok", "failed", "skipped", "interrupted")
REFERENCE_NAMES = {"gray": "gray input", "truth": "ground truth"}


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


def key_text(value) -> str:
    """One text per JSON value (sorted keys), for grouping; never fails on odd values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def options_text(options: dict) -> str:
    """``key=value, …`` in key order; "" for none."""
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(options.items()))


@dataclass
class Run:
    """One result.json, normalised."""

    method: str  # for references: "gray input" / "ground truth"
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
    kind: str = "method"  # "method" | "reference"
    reference: str | None = None  # "gray" | "truth" for references
    dataset_options: dict = field(default_factory=dict)
    hardware: str = "unknown device x1"  # hardware_class(): device name x count
    precision: str = "fp32"
    changed_options: dict = field(default_factory=dict)
    run_id: str | None = None  # the result's run_key (schema 2)
    demo: str | None = None  # why this run is only a demo

    @property
    def where(self) -> str:
        return f"{self.source}/{self.path}"

    @property
    def is_reference(self) -> bool:
        return self.kind == "reference"

    @property
    def test_set_key(self) -> tuple:
        """The test images: what reference rows attach on."""
        return (self.dataset, key_text(self.dataset_options), self.size if self.size is not None else -1)

    @property
    def board_key(self) -> tuple:
        """Boards compare like with like: test set, budget, hardware class and precision."""
        return self.test_set_key + (as_text(self.budget.get("kind")) or "", as_number(self.budget.get("value")) or 0.0,
                                    self.hardware, self.precision)

    @property
    def group_key(self) -> tuple:
        """The board key of a method run; the test-set key of a reference (it joins every such board)."""
        return ("reference",) + self.test_set_key if self.is_reference else ("method",) + self.board_key

    @property
    def row_key(self) -> tuple:
        """One leaderboard row per method and changed options; seeds merge into it."""
        return (self.method, key_text(self.changed_options))

    @property
    def merge_key(self) -> tuple:
        if self.run_id:
            return ("run_key", self.run_id)
        return ("legacy",) + self.group_key + (self.method, self.seed if self.seed is not None else -1)

    @property
    def sort_key(self) -> tuple:
        return (self.method, key_text(self.changed_options), self.seed if self.seed is not None else -1,
                self.source, self.path)

    @property
    def seed_label(self) -> str:
        """``seed k``; references have no seed."""
        return f"seed {self.seed}" if self.seed is not None else ("reference" if self.is_reference else "seed ?")

    @property
    def label(self) -> str:
        """The method with its changed options, e.g. ``pix2pix (gan_mode=lsgan)``."""
        options = options_text(self.changed_options)
        return f"{self.method} ({options})" if options else self.method

    def section(self, name: str) -> dict:
        return as_dict(self.raw.get(name))

    def per_image(self, metric: str) -> list[float] | None:
        values = as_list(self.section("per_image").get(metric))
        numbers = [as_number(v) for v in values]
        return numbers if numbers and None not in numbers else None

    def image_names(self) -> list | None:
        return as_list(self.section("per_image").get("names")) or None


def _metric_details(result: dict) -> dict[str, dict]:
    """{name: detail} with a status and a value (or None); older results only had ``metrics``.

    A value the runner marked ``infinite`` (PSNR of the ground truth against itself) is +inf here.
    """
    details = {}
    raw_details = as_dict(result.get("metric_details"))
    names = list(raw_details) + [n for n in as_dict(result.get("metrics")) if n not in raw_details]
    for name in names:
        detail = dict(as_dict(raw_details.get(name)))
        value = as_number(detail.get("value", as_dict(result.get("metrics")).get(name)))
        status = detail.get("status") if detail.get("status") in ("ok", "unavailable", "failed") else None
        if status is None:
            status = "ok" if value is not None else "failed"
        if status == "ok" and value is None and detail.get("infinite") is True:
            value = math.inf
        elif status == "ok" and value is None:
            status, detail["reason"] = "failed", detail.get("reason") or "no value recorded"
        detail.update(status=status, value=value)
        details[str(name)] = detail
    return details


def _hardware(result: dict) -> str:
    identity, hardware = as_dict(result.get("identity")), as_dict(result.get("hardware"))
    named = as_text(identity.get("hardware")) or as_text(hardware.get("class"))
    if named:
        return named
    device = as_text(hardware.get("device")) or as_text(result.get("device")) \
        or as_text(as_dict(result.get("environment")).get("device"))
    return hardware_class(device or "unknown device", as_int(hardware.get("count")) or 1)


def normalise(result: dict, source: str, runs_dir: Path) -> Run:
    directory = Path(result["_dir"])
    status = result.get("status") if result.get("status") in STATUSES else "failed"
    error = as_text(result.get("error"))
    if result.get("status") not in STATUSES:
        error = error or f"unknown status {result.get('status')!r} in result.json"
    identity = as_dict(result.get("identity"))
    kind = "reference" if result.get("kind") == "reference" else "method"
    reference = as_text(result.get("reference") or identity.get("reference")) if kind == "reference" else None
    dataset_options = identity.get("dataset_options", as_dict(result.get("config")).get("dataset_options"))
    method = as_text(result.get("method")) or (REFERENCE_NAMES.get(reference, reference) if reference else None)
    return Run(
        method=method or "?",
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
        kind=kind,
        reference=reference,
        dataset_options=as_dict(dataset_options),
        hardware=_hardware(result),
        precision=as_text(identity.get("precision") or result.get("precision")) or "fp32",
        changed_options=as_dict(result.get("changed_options")),
        run_id=as_text(result.get("run_key")),
        demo=as_text(result.get("demo")) or None,
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
    """Every run of every folder, duplicates merged; returns (runs, {group key: notes on replaced runs})."""
    if not runs_dirs:
        raise BenchError("no runs folder given: pass one or more with --runs")
    unique_dirs = list(dict.fromkeys(Path(d).resolve() for d in runs_dirs))  # the same folder twice counts once
    kept: dict[tuple, Run] = {}
    notes: dict[tuple, list[str]] = {}
    for runs_dir, label in zip(unique_dirs, source_labels(unique_dirs)):
        damaged: list = []
        results = store.load_results(runs_dir, damaged)
        for _, reason in damaged:  # one damaged file costs its own run, not the report
            warn(f"left out of the report: {reason}")
        if not results:
            if damaged:
                raise BenchError(f"no readable result.json under {runs_dir}: all {len(damaged)} are damaged "
                                 "(`bench run` does their runs again)")
            raise BenchError(f"no result.json files under {runs_dir}: run `bench run --out {runs_dir}` first")
        for result in results:
            run = normalise(result, label, runs_dir)
            previous = kept.get(run.merge_key)
            if previous is not None:
                seed = f" seed {run.seed}" if run.seed is not None else ""
                notes.setdefault(run.group_key, []).append(
                    f"{run.label}{seed}: {previous.where} ({previous.status}) replaced by {run.where} ({run.status}); "
                    "later --runs folders win")
            kept[run.merge_key] = run
    return sorted(kept.values(), key=lambda r: (r.group_key, r.sort_key)), notes
