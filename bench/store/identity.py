"""A run's identity: what makes two runs the same run, and the folder it names.

A run is identified by (dataset, dataset options, size, budget, method, method options,
precision, hardware class, seed). Two runs that differ in any of these never share a folder;
a run with the same identity *is* the same run (re-running it is detected, see ``bench run``).
Precision and hardware are part of it because a time budget buys different work on a different
device, or at another precision. A compute budget (epochs, images, FLOPs: ``bench.engine.budget``) buys
the same training everywhere, so its runs have the hardware class ``ANY_HARDWARE`` in their identity
(the device is still recorded in the result) and runs made on different machines share a board.

The folder is ``<out>/<dataset>/<method>/<size>px-<budget>-<hash>/seed<k>``: ``<hash>`` is a short
digest of the whole identity but the seed (the *config hash*), so the seeds of one config sit
side by side and merge into one leaderboard row. The full identity is in ``result.json``.

Reference rows (``gray`` input, ``truth``) depend only on the test images: (dataset, dataset
options, size); they live in ``<out>/<dataset>/_reference/<size>px-<hash>/<name>``.

This module is the one place identities are built; the runner, resume, the index, the launchers
and the report all key on it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

HASH_LENGTH = 10
REFERENCE_FOLDER = "_reference"


def safe_name(name: str, *, keep: str = "-_.+", limit: int | None = None) -> str:
    """A path component that cannot escape the output folder: characters other than letters, digits and ``keep``
    become ``_``, the first ``limit`` kept."""
    cleaned = "".join(c if c.isalnum() or c in keep else "_" for c in name)[:limit].strip(".")
    return cleaned or "_"


def canonical_json(value) -> str:
    """One text per value: sorted keys, no spaces, floats by repr (so 2e-4 and 0.0002 agree)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def digest(value, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def budget_key(kind: str, value: float) -> dict:
    """A budget as it counts for identity: its kind and amount, not its spelling (10m == 600s)."""
    value = float(value)
    return {"kind": kind, "value": int(value) if value.is_integer() else value}


def budget_slug(budget: dict) -> str:
    value, kind = budget["value"], budget["kind"]
    return {"steps": f"{value}steps", "epochs": f"{value}epochs", "images": f"{value}images",
            "flops": f"{value:g}flop"}.get(kind, f"{value}s")


ANY_HARDWARE = "any hardware"  # the hardware class of compute-budget runs: the same training on every device
COMPUTE_BUDGETS = ("epochs", "images", "flops")


def hardware_class(device_name: str, count: int = 1) -> str:
    """The board's hardware key: device name x device count, e.g. ``NVIDIA H100 80GB HBM3 x1``."""
    return f"{device_name} x{count}"


def identity_hardware(budget: dict, hardware: str) -> str:
    """The hardware class a run's identity holds: its own for time and step budgets, ``ANY_HARDWARE`` for
    compute budgets."""
    return ANY_HARDWARE if budget["kind"] in COMPUTE_BUDGETS else hardware


@dataclass(frozen=True)
class RunIdentity:
    dataset: str
    dataset_options: dict
    size: int
    budget: dict  # budget_key(): {"kind": "time"|"steps", "value": number}
    method: str
    method_options: dict  # every option, defaults filled in
    precision: str
    hardware: str  # hardware_class()
    seed: int
    # Not part of the identity: the options that differ from the method's defaults (for display).
    changed_options: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        for name, value in (("dataset_options", self.dataset_options), ("method_options", self.method_options)):
            for key, option in value.items():
                if isinstance(option, float) and not math.isfinite(option):
                    # JSON cannot hold it faithfully, so the run could not be identified again.
                    raise ValueError(f"{name} {key}={option} is not a finite number")

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("changed_options")
        return out

    @property
    def config(self) -> dict:
        """Everything but the seed: runs that differ only in seed share it (one leaderboard row)."""
        out = self.to_dict()
        out.pop("seed")
        return out

    @property
    def config_hash(self) -> str:
        return digest(self.config)

    @property
    def run_key(self) -> str:
        """Unique per run (seed included): what resume, the index and the launchers key on."""
        return digest(self.to_dict(), 16)

    def folder(self, out: Path) -> Path:
        leaf = f"{self.size}px-{budget_slug(self.budget)}-{self.config_hash}"
        return Path(out) / safe_name(self.dataset) / safe_name(self.method) / leaf / f"seed{self.seed}"

    @classmethod
    def from_dict(cls, data: dict) -> "RunIdentity":
        fields = ("dataset", "dataset_options", "size", "budget", "method", "method_options", "precision",
                  "hardware", "seed")
        missing = [f for f in fields if f not in data]
        if missing:
            raise ValueError(f"identity lacks {', '.join(missing)}")
        return cls(**{f: data[f] for f in fields})


@dataclass(frozen=True)
class ReferenceIdentity:
    """A reference row's identity: it depends on the test images only."""

    dataset: str
    dataset_options: dict
    size: int
    reference: str  # "gray" | "truth"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def test_set_hash(self) -> str:
        return digest({"dataset": self.dataset, "dataset_options": self.dataset_options, "size": self.size})

    @property
    def run_key(self) -> str:
        return digest(self.to_dict(), 16)

    def folder(self, out: Path) -> Path:
        return (Path(out) / safe_name(self.dataset) / REFERENCE_FOLDER / f"{self.size}px-{self.test_set_hash}"
                / safe_name(self.reference))
