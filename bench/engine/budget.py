"""Training budgets: wall-clock seconds, a number of steps, or a named preset.

Every method in one ``bench run`` gets the same budget. Time is counted around training steps
only (batch drawing included, evaluation and checkpointing excluded) and synchronised with the
device, so asynchronous GPU work is paid for by the step that queued it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import BenchError

PRESETS = {
    "smoke": "30steps",  # a CPU demo: every method runs end to end in seconds
    "short": "5m",
    "standard": "15m",  # the default: every method trained well past its schedule's start on one GPU
}
DEFAULT = "standard"
DEMO_PRESETS = {"smoke"}  # demos wherever they run
GPU_PRESETS = {"short", "standard"}  # sized for a GPU: on a CPU they buy a demo's worth of training

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(steps?|s|sec|m|min|h)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    kind: str  # "time" (seconds) or "steps"
    value: float
    label: str  # as the user wrote it, e.g. "smoke" or "90s"

    @classmethod
    def parse(cls, text: str) -> "Budget":
        label = text.strip()
        spec = PRESETS.get(label.lower(), label)
        match = _PATTERN.match(spec)
        if not match:
            raise BenchError(
                f"bad budget {text!r}: use seconds/minutes/hours (90s, 10m, 1h), steps (500steps) "
                f"or a preset ({', '.join(PRESETS)})"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
        if number <= 0:
            raise BenchError(f"bad budget {text!r}: must be positive")
        if unit.startswith("step"):
            if not number.is_integer():
                raise BenchError(f"bad budget {text!r}: a whole number of steps")
            return cls("steps", int(number), label)
        return cls("time", number * _UNITS[unit], label)

    def progress(self, steps: int, seconds: float) -> float:
        """Fraction of the budget used so far, in [0, 1]."""
        used = steps if self.kind == "steps" else seconds
        return min(1.0, used / self.value)

    def done(self, steps: int, seconds: float, step_seconds: float) -> bool:
        """Stop before a step that would end farther from the budget than stopping now."""
        if self.kind == "steps":
            return steps >= self.value
        return steps > 0 and seconds + step_seconds / 2 >= self.value

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value, "label": self.label}

    def demo_reason(self, device_type: str) -> str | None:
        """Why a run under this budget is only a demo, or None when it can be published."""
        preset = self.label.lower()
        if preset in DEMO_PRESETS:
            return f"{preset} preset ({PRESETS[preset]}): a demo that shows the pipe works, not a benchmark"
        if preset in GPU_PRESETS and device_type == "cpu":
            return (f"CPU run of a GPU-sized budget ({preset} = {PRESETS[preset]}): the methods get a small "
                    "fraction of the training a GPU gives them")
        return None
