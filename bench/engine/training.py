"""The budgeted training loop: the only place the budget clock runs.

Shaped for a GPU: the loop never waits for the device on an ordinary step. Loss values stay on
the device and are fetched every ``FLUSH_STEPS`` steps (or ``FLUSH_SECONDS``), all in one
transfer; that is also where the clock synchronises, the divergence check reads its verdict, the
progress bar moves and periodic checkpoints are written. Between flushes the clock predicts the
time used from the last window, and close to the end of a time budget it synchronises every step,
so the budget still lands within 1 % (or one step). Everything a step queues is paid for by the
budget: the synchronisation at each flush charges queued work to the window that queued it.

On several ranks (``bench.engine.distributed``) every decision -- flush, stop, checkpoint, end of
budget -- is taken from values the ranks agree on at each flush (the slowest rank's clock, the mean
losses, anyone's stop request), so they all take the same number of steps. The clock then counts
GPU-seconds: wall time x the number of ranks.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from bench.engine.budget import Budget
from bench.engine.distributed import World
from bench.errors import BenchError
from bench.method import Method, training_step
from bench.progress import progress_bar

HISTORY_POINTS = 400  # loss curves are averaged into at most this many points
FLUSH_STEPS = 50  # fetch losses (one transfer) and synchronise the clock at least this often...
FLUSH_SECONDS = 2.0  # ...or after this much host time
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Diverged(BenchError):
    """A loss (or an output) became NaN or infinite: the run fails, it is never scored."""


class Interrupted(Exception):
    """A stop was requested (SIGTERM, Ctrl-C); the state was checkpointed first. ``record``: the training
    reached so far (None when the stop came before training)."""

    def __init__(self, message: str, record: "TrainingRecord | None" = None):
        super().__init__(message)
        self.record = record
        self.result: dict | None = None  # the run's result as written, set by the harness on its way up


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
    trained: bool = False  # the budget is spent: a run resumed from this record goes straight to scoring

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

    def state_dict(self) -> dict:
        """Plain lists and numbers only, so it loads with ``weights_only=True``."""
        return {"steps": self.steps, "seconds": self.seconds, "images": self.images, "trained": self.trained,
                "log": [[step, seconds, dict(losses)] for step, seconds, losses in self.log]}

    @classmethod
    def from_state(cls, state: dict) -> "TrainingRecord":
        return cls(int(state["steps"]), float(state["seconds"]), int(state["images"]),
                   [(int(s), float(t), dict(losses)) for s, t, losses in state["log"]], bool(state.get("trained")))


def autocast(device: torch.device, precision: str):
    """Mixed precision for training steps only (metrics always run in fp32)."""
    if precision not in PRECISIONS:
        raise BenchError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class _Window:
    """Steps since the last flush: their loss tensors and host time."""

    def __init__(self):
        self.entries: list[tuple[int, dict]] = []
        self.start = time.perf_counter()

    def fetch(self, world: World) -> list[tuple[int, dict[str, float]]]:
        """Every loss of the window as floats (the mean over ranks), in one device-to-host transfer."""
        tensors = [v for _, losses in self.entries for v in losses.values() if isinstance(v, torch.Tensor)]
        stacked = torch.stack([t.detach().reshape(()).float().to(tensors[0].device) for t in tensors]) if tensors else None
        if stacked is not None and world.distributed:  # a non-finite loss on any rank is seen by all
            stacked = world.all_reduce(stacked) / world.size
        values = iter(stacked.tolist() if stacked is not None else [])
        return [(step, {name: next(values) if isinstance(v, torch.Tensor) else float(v) for name, v in losses.items()})
                for step, losses in self.entries]


def check_finite(entries: list[tuple[int, dict[str, float]]]) -> None:
    for step, losses in entries:
        for name, value in losses.items():
            if not math.isfinite(value):
                raise Diverged(f"diverged: non-finite {name} at step {step}")


def train(method: Method, sampler, budget: Budget, *, label: str = "train", record: TrainingRecord | None = None,
          precision: str = "fp32", on_checkpoint: Callable[[TrainingRecord], None] | None = None,
          checkpoint_every: float = math.inf, should_stop: Callable[[], bool] = lambda: False,
          on_flush: Callable[[list], None] | None = None, world: World = World()) -> TrainingRecord:
    """Step ``method`` until the budget is spent, continuing ``record`` when resuming.

    ``on_checkpoint(record)`` is called every ``checkpoint_every`` seconds of training and before
    raising :class:`Interrupted` when ``should_stop()`` turns true. ``on_flush(rows)`` gets each flush's new
    rows of ``record.log`` -- (step, seconds, {loss: value}) -- e.g. for a live view (``bench.engine.live``).
    Both run outside the timed window. Raises :class:`Diverged` at the first flush that sees a non-finite
    loss. On several ranks (``world``) call it on every rank with the method inside ``distributed.parallelize``.
    """
    record = record or TrainingRecord()
    agreed = world.distributed  # decide only on values every rank has (see the module's docstring)
    device = method.device
    step_autocast = autocast(device, precision)
    last_checkpoint = record.seconds
    window_step_s = 0.0  # mean step time of the last flushed window: predicts the clock between flushes
    method.train_mode()  # once: modes are not set per step
    synchronize(device)
    window = _Window()

    window_limit = 1 if agreed else FLUSH_STEPS  # ranks predict nothing before a first window: start small

    def flush(advance) -> bool:
        """Close the window; returns whether a stop was requested (on any rank)."""
        nonlocal window, window_step_s, last_checkpoint, window_limit
        synchronize(device)  # charges every queued kernel to this window
        elapsed = time.perf_counter() - window.start
        stop = should_stop()
        if agreed:  # the slowest rank's clock, in GPU-seconds; anyone's stop request
            shared = world.all_reduce(torch.tensor([elapsed, float(stop)], device=device, dtype=torch.float64), "max")
            elapsed, stop = shared[0].item() * world.size, bool(shared[1].item())
            window_limit = min(FLUSH_STEPS, 2 * window_limit)
        entries = window.fetch(world)
        if entries:
            window_step_s = elapsed / len(entries)
        first_seconds = record.seconds
        for k, (step, losses) in enumerate(entries, start=1):
            record.log.append((step, first_seconds + elapsed * k / len(entries), losses))
        record.seconds = first_seconds + elapsed
        if on_flush and entries:  # before the divergence check: the losses up to a divergence are seen too
            on_flush(record.log[-len(entries):])
        check_finite(entries)
        if entries:
            shown = " ".join(f"{k}={v:.3f}" for k, v in entries[-1][1].items())
            advance(len(entries) if budget.kind == "steps" else elapsed, info=shown)
        if on_checkpoint and record.seconds - last_checkpoint >= checkpoint_every:
            on_checkpoint(record)
            last_checkpoint = record.seconds
        window = _Window()  # the bookkeeping above is not charged to the budget
        return stop

    def interrupt():
        if on_checkpoint:
            on_checkpoint(record)
        raise Interrupted(f"stopped at step {record.steps}", record)

    with progress_bar(label, total=budget.value, unit_column=budget.kind == "steps") as advance:
        while True:
            host_s = 0.0 if agreed else time.perf_counter() - window.start
            # Predicted training time so far; exact on a CPU (steps run synchronously there).
            used = record.seconds + max(host_s, len(window.entries) * window_step_s)
            last_step_s = window_step_s if window.entries else (record.log[-1][1] - record.log[-2][1]
                                                                if len(record.log) > 1 else 0.0)
            if budget.done(record.steps, used, last_step_s):
                break
            if not agreed and should_stop():  # several ranks stop together, at a flush
                flush(advance)
                interrupt()
            batch = sampler.next()
            with step_autocast:
                losses = training_step(method, batch, budget.progress(record.steps, used))
            record.steps += 1
            record.images += batch.images * world.size
            window.entries.append((record.steps, losses))
            near_end = budget.kind == "time" and used + 2 * FLUSH_STEPS * window_step_s >= budget.value
            checkpoint_due = on_checkpoint is not None and used - last_checkpoint >= checkpoint_every
            if len(window.entries) >= window_limit or host_s >= FLUSH_SECONDS or near_end or checkpoint_due:
                if flush(advance) and agreed:
                    interrupt()
        flush(advance)
    return record
