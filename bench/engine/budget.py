"""Training budgets: wall-clock time, steps, or compute that means the same on every machine.

Every method in one ``bench run`` gets the same budget, in one of these units:

* **time** (``90s``, ``10m``, ``5minutes``, ``1h``): counted around training steps only (batch drawing
  included, evaluation and checkpointing excluded) and synchronised with the device, so asynchronous
  GPU work is paid for by the step that queued it. A time budget buys different training on other
  hardware, so its runs are keyed on the hardware class.
* **steps** (``500steps``): optimiser steps, whatever a step holds.
* **compute** -- the same on every machine, so runs made on a CPU, an A100 and an H100 share a board:
  ``20epochs`` (passes over the training split), ``200kimages`` / ``200000images`` (images the
  method's steps consume: a batch of N counts N; an unpaired method's independent colour batch counts
  too; a paired image counts once) and ``5PFLOP`` (also ``GFLOP``, ``TFLOP``, ``EFLOP``: the probe's
  FLOPs of one step, ``FlopCounterMode``, times steps). Before training, a compute budget becomes a whole
  number of steps for that method (``resolve``): the same number on every machine.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bench.errors import BenchError
from bench.store.identity import COMPUTE_BUDGETS  # not bound to the hardware: not keyed on it

PRESETS = {
    "smoke": "30steps",  # a CPU demo: every method runs end to end in seconds
    "short": "5m",
    "standard": "15m",  # the default: every method trained well past its schedule's start on one GPU
}
DEFAULT = "standard"
DEMO_PRESETS = {"smoke"}  # demos wherever they run

MAX_STEPS = 2**53  # what the store (JSON numbers, SQLite integers) records exactly
_TIME = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
         "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600}
_COUNTS = {"step": "steps", "steps": "steps", "epoch": "epochs", "epochs": "epochs", "image": "images",
           "images": "images", "img": "images", "imgs": "images"}
_FLOPS = {"gflop": 1e9, "tflop": 1e12, "pflop": 1e15, "eflop": 1e18}
_MULTIPLIERS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kKM]?)\s*([A-Za-z]+)\s*$")
HELP = ("time (90s, 10m, 5minutes, 1h), steps (500steps), epochs (20epochs), images (200kimages), FLOPs (5PFLOP, "
        "TFLOP, EFLOP) or a preset (" + ", ".join(PRESETS) + "); a comma list of one kind (2m,5m,15m) is a curve")


@dataclass(frozen=True)
class Budget:
    kind: str  # "time" (seconds), "steps", "epochs", "images" or "flops"
    value: float
    label: str  # as the user wrote it, e.g. "smoke" or "90s"

    @classmethod
    def parse(cls, text: str) -> "Budget":
        label = text.strip()
        spec = PRESETS.get(label.lower(), label)
        match = _PATTERN.match(spec)
        bad = f"bad budget {text!r}: use {HELP}"
        if not match:
            raise BenchError(bad)
        number, multiplier, unit = float(match.group(1)), match.group(2), match.group(3)
        plain = unit.lower().removesuffix("s") if unit.lower().endswith("flops") else unit.lower()
        if plain in _TIME and not multiplier:
            kind, value = "time", number * _TIME[plain]
        elif plain in _COUNTS:
            kind, value = _COUNTS[plain], number * _MULTIPLIERS[multiplier]
        elif plain in _FLOPS and not multiplier:
            kind, value = "flops", number * _FLOPS[plain]
        else:
            raise BenchError(bad)
        if not value > 0:
            raise BenchError(f"bad budget {text!r}: must be positive")
        if kind in ("steps", "images"):
            if not float(value).is_integer():
                raise BenchError(f"bad budget {text!r}: a whole number of {kind}")
            value = int(value)
        limit = {"steps": MAX_STEPS, "images": MAX_STEPS, "epochs": 1e9, "time": 1e9, "flops": 1e30}[kind]
        if not value <= limit:  # inf too
            raise BenchError(f"bad budget {text!r}: at most {limit:g} {kind if kind != 'time' else 'seconds'}")
        return cls(kind, value, label)

    @property
    def is_compute(self) -> bool:
        """A budget that means the same on every machine (not keyed on hardware)."""
        return self.kind in COMPUTE_BUDGETS

    def resolve(self, *, images_per_step: int, flops_per_step: float | None, train_images: int) -> "Budget":
        """The budget the training loop runs: time and steps as they are; a compute budget as the whole number
        of steps that reaches it (rounded up, at least 1) for a method whose step consumes ``images_per_step``
        images and ``flops_per_step`` FLOPs."""
        if not self.is_compute:
            return self
        if self.kind == "flops":
            if not flops_per_step:
                raise BenchError(f"budget {self.label}: the probe counted no FLOPs in this method's step")
            steps = self.value / flops_per_step
        else:
            images = self.value * train_images if self.kind == "epochs" else self.value
            steps = images / images_per_step
        steps = max(1, math.ceil(steps - 1e-9))
        if steps > MAX_STEPS:
            raise BenchError(f"budget {self.label}: {steps} steps, more than the store records ({MAX_STEPS})")
        return Budget("steps", steps, self.label)

    def progress(self, steps: int, seconds: float) -> float:
        """Fraction of the budget used so far, in [0, 1] (time and step budgets: see ``resolve``)."""
        used = steps if self.kind == "steps" else seconds
        return min(1.0, used / self.value)

    def done(self, steps: int, seconds: float, step_seconds: float) -> bool:
        """Stop before a step that would end farther from the budget than stopping now."""
        if self.kind == "steps":
            return steps >= self.value
        return steps > 0 and seconds + step_seconds / 2 >= self.value

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value, "label": self.label}

    def demo_reason(self, device_type: str, epochs: float | None = None) -> str | None:
        """Why a run under this budget is only a demo, or None when it can be published: the smoke preset,
        a time budget on a CPU, or (once trained) less than one pass over the training split."""
        preset = self.label.lower()
        if preset in DEMO_PRESETS:
            return f"{preset} preset ({PRESETS[preset]}): a demo that shows the pipe works, not a benchmark"
        if self.kind == "time" and device_type == "cpu":
            return (f"CPU run of a time budget ({self.label}): a CPU buys a small fraction of the training a GPU "
                    "gives in the same time")
        if epochs is not None and epochs < 1:
            return f"under-trained: {epochs:.2g} epochs of the training split (less than one pass)"
        return None



def parse_budgets(text: str) -> list[Budget]:
    """``--budget``: one budget, or a comma list of one kind (a curve: every method at every budget), smallest first."""
    budgets = [Budget.parse(part) for part in text.split(",") if part.strip()]
    if not budgets:
        raise BenchError(f"bad budget {text!r}: use {HELP}")
    kinds = sorted({b.kind for b in budgets})
    if len(kinds) > 1:
        raise BenchError(f"--budget {text}: a list takes one kind (all times, all steps, all epochs, ...), got "
                         f"{', '.join(kinds)}")
    if len({b.value for b in budgets}) != len(budgets):
        raise BenchError(f"--budget {text}: a budget is listed twice")
    return sorted(budgets, key=lambda b: b.value)
