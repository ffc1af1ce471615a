"""What a method's step costs, measured outside the budget: FLOPs, data-pipeline time, compilation.

Before the budget clock starts, ``probe`` runs steps on a snapshot of the method and sampler and
then restores both exactly (networks, optimisers, schedule, RNG streams, sampler position), so the
run trains as if the probe never happened (bit-identical on the CPU, tested). It measures:

- a lower bound of one training step's memory, checked against the device's (``bench.memory``);
- FLOPs of one training step (``torch.utils.flop_counter.FlopCounterMode``, counted once, eager);
- the data pipeline's time per batch (sampling, crop/flip, Lab), device-synchronised;
- with ``compile``, the networks are compiled (``nn.Module.compile``: the method keeps its module
  objects) and warmed up by two steps, whose time is recorded as ``compile_s``, never charged.

``utilisation`` turns these and the trained steps into achieved TFLOP/s and the share of the
device's peak.
"""

from __future__ import annotations

import copy
import random
import time

import numpy as np
from torch.utils.flop_counter import FlopCounterMode

from bench.engine.training import autocast, synchronize
from bench.method import training_step
from bench.errors import BenchError
from bench.memory import check_training_step

DATA_PROBE_BATCHES = 8
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "reduce-overhead")
# Dense peak FLOP/s per precision of the GPUs the suite has been lent, from their datasheets (SXM).
PEAK_FLOPS = {
    "H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12},
}


def peak_flops(device_name: str, precision: str) -> float | None:
    for chip, peaks in PEAK_FLOPS.items():
        if chip in device_name:
            return peaks.get(precision)
    return None


class _Snapshot:
    """Everything a probe step changes, copied, so it can be put back exactly."""

    def __init__(self, method, sampler):
        self.method, self.sampler = method, sampler
        self.method_state = copy.deepcopy(method.state_dict())
        self.sampler_state = copy.deepcopy(sampler.state_dict())
        self.python_rng, self.numpy_rng = random.getstate(), np.random.get_state()
        self.progress = method.progress

    def restore(self) -> None:
        self.method.load_state_dict(self.method_state, restore_training=True)
        self.sampler.load_state_dict(self.sampler_state)
        random.setstate(self.python_rng)
        np.random.set_state(self.numpy_rng)
        self.method.progress = self.progress
        for optimizer in self.method.optimizers.values():  # back to the lr the schedule will set
            for group in optimizer.param_groups:
                if "initial_lr" in group:
                    group["lr"] = group["initial_lr"]


def probe(method, sampler, *, precision: str = "fp32", compile_mode: str | None = None) -> dict:
    device = method.device
    snapshot = _Snapshot(method, sampler)
    method.train_mode()
    out = {}
    try:
        # Before any batch of the run's size exists: a batch that cannot fit is refused in one line.
        out["step_memory_lower_bound"] = check_training_step(method, sampler.batch_size, sampler.size,
                                                             autocast=autocast(device, precision))
        synchronize(device)
        start = time.perf_counter()
        for _ in range(DATA_PROBE_BATCHES):
            batch = sampler.next()
        synchronize(device)
        out["data_s_per_batch"] = (time.perf_counter() - start) / DATA_PROBE_BATCHES
        counter = FlopCounterMode(display=False)
        with counter, autocast(device, precision):
            training_step(method, batch, 0.0)
        out["flops_per_step"] = int(counter.get_total_flops())
        if compile_mode:
            if not getattr(method, "supports_compile", True):
                out["compile"] = f"{method.name} opts out of compilation"
            else:
                if compile_mode not in COMPILE_MODES:
                    raise BenchError(f"--compile {compile_mode!r}: choose one of {', '.join(COMPILE_MODES)}")
                for net in method.nets.values():
                    net.compile(mode=compile_mode)
                synchronize(device)
                start = time.perf_counter()
                for _ in range(2):  # the first call compiles; the second catches recompiles for the steady state
                    with autocast(device, precision):
                        training_step(method, sampler.next(), 0.0)
                synchronize(device)
                out["compile_s"] = time.perf_counter() - start
                out["compile"] = compile_mode
    finally:
        snapshot.restore()
    return out


def utilisation(probed: dict, *, steps: int, seconds: float, device_name: str, precision: str) -> dict:
    """Achieved TFLOP/s, share of the device's peak, and the data pipeline's share of a step."""
    out = {}
    if not seconds or not steps:
        return out
    step_s = seconds / steps
    if probed.get("flops_per_step"):
        achieved = probed["flops_per_step"] * steps / seconds
        out["achieved_tflops"] = achieved / 1e12
        peak = peak_flops(device_name, precision)
        out["peak_tflops"] = peak / 1e12 if peak else None
        out["peak_share"] = achieved / peak if peak else None
    if probed.get("data_s_per_batch") is not None:
        out["data_share"] = min(1.0, probed["data_s_per_batch"] / step_s)
    return out
