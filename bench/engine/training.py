"""The budgeted training loop: the only place the budget clock runs."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from bench.engine.budget import Budget
from bench.data import BatchSampler
from bench.method import Method
from bench.progress import progress_bar

HISTORY_POINTS = 400  # loss curves are averaged into at most this many points


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class TrainingRecord:
    steps: int = 0
    seconds: float = 0.0
    images: int = 0
    # One entry per step: (step, seconds so far, {loss name: value}).
    log: list = field(default_factory=list)

    def history(self, points: int = HISTORY_POINTS) -> dict:
        """Loss curves averaged into at most ``points`` bins: {"step", "time", "losses"}."""
        if not self.log:
            return {"step": [], "time": [], "losses": {}}
        bin_size = max(1, math.ceil(len(self.log) / points))
        names = sorted({name for _, _, losses in self.log for name in losses})
        out = {"step": [], "time": [], "losses": {name: [] for name in names}}
        for start in range(0, len(self.log), bin_size):
            chunk = self.log[start : start + bin_size]
            out["step"].append(chunk[-1][0])
            out["time"].append(round(chunk[-1][1], 4))
            for name in names:
                values = [losses[name] for _, _, losses in chunk if name in losses]
                out["losses"][name].append(sum(values) / len(values) if values else None)
        return out


def train(method: Method, sampler: BatchSampler, budget: Budget, *, label: str = "train") -> TrainingRecord:
    """Step ``method`` until the budget is spent; time counts only the steps (device-synchronised)."""
    record = TrainingRecord()
    device = method.device
    step_seconds = 0.0
    total = budget.value if budget.kind == "steps" else None
    method.train_mode()  # once: modes are not set per step
    synchronize(device)
    with progress_bar(label, total=budget.value, unit_column=budget.kind == "steps") as advance:
        while not budget.done(record.steps, record.seconds, step_seconds):
            start = time.perf_counter()
            batch = sampler.next()
            losses = method.step(batch, budget.progress(record.steps, record.seconds))
            synchronize(device)
            step_seconds = time.perf_counter() - start
            record.seconds += step_seconds
            record.steps += 1
            record.images += len(batch)
            values = {name: float(value) for name, value in losses.items()}
            record.log.append((record.steps, record.seconds, values))
            shown = " ".join(f"{k}={v:.3f}" for k, v in values.items())
            advance(1 if total else step_seconds, info=shown)
    return record
