"""Training steps side by side: colorbench's harness against the reference layout, in one process.

Run: python -m pytest tests/benchmarks/test_reference_step_bench.py --benchmark-only
(add ``--benchmark-json out.json`` to keep every figure; the summary table is printed at the end).

For pix2pix, cyclegan-paired and the baseline, at batch 1 and at the batch that fills the device
(doubled from 1 while images/s rises by > 5 % and memory allows, up to COLORBENCH_BENCH_MAX_BATCH):

- **colorbench**, as a user gets it: ``registry.create_method(name, size, device, batch_size=B)``
  stepped by the engine's own loop (``bench.engine.training.train``, a steps budget) at the default
  precision (``auto``: bf16 autocast on CUDA, fp32 on the CPU), with ``cudnn.benchmark`` as
  ``bench run`` sets it, and the ``BatchSampler`` drawing crop/flip/Lab batches from a uint8 tensor
  on the device -- the data pipeline is part of the step. The engine applies no ``channels_last``
  and compiles nothing by default, so neither does this benchmark. FLOPs per step come from the
  engine's own probe (``FlopCounterMode``); the data pipeline's share is ``sampler.next()`` timed
  alone (synchronised) over the step time.
- **reference**: ``reference_nets`` (the junyanz layout, fp32, ``DataParallel`` on one GPU,
  ``set_input`` copying the host batch each step), as its train.py runs it. Its DataLoader workers
  (PIL + scikit-image Lab on the CPU) are not timed: that only flatters the reference.

Each round is N steps with one synchronisation at the end, after a warm-up round; images/s =
B * N / median round seconds. On CUDA the sizes are 256x256 (COLORBENCH_BENCH_SIZE) and N is picked
for about 2 s per round; without CUDA the CUDA rows are skipped and a small CPU variant checks the
code path (see ``side_by_side`` for every setting).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tests.benchmarks import reference_nets
from bench import registry
from bench.data import BatchSampler, train_load_size
from bench.engine.budget import Budget
from bench.engine.probe import probe
from bench.engine.training import synchronize, train
from bench.engine.context import resolve_precision
from bench.tf32 import tf32_enabled
from tests.benchmarks.side_by_side import (DEVICES, RESULTS, Settings, device_name, fill_batch, find_result, free_memory,
                          steps_per_round, synthetic_images, timed, utilisation)

METHODS = ("pix2pix", "cyclegan-paired", "baseline")
TRAIN_IMAGES = 64  # stored images the sampler draws from (with replacement)
DATA_BATCHES = 20  # sampler.next() calls timed for the data pipeline's share
# Reference rows first: the colorbench rows divide by the reference at batch 1.
CASES = [pytest.param(method, side, kind, id=f"{method}-{side}-b{kind}")
         for method in METHODS for side in ("reference", "colorbench") for kind in ("1", "fill")]


def training_images(size: int) -> torch.Tensor:
    return synthetic_images(TRAIN_IMAGES, train_load_size(size), seed=0)


class ColorbenchSide:
    def __init__(self, method: str, batch: int, settings: Settings):
        self.device = settings.device
        torch.manual_seed(0)
        # The reference layout (reference_nets) is the Lab setting's nets: compare CycleGAN like with like.
        lab = {"color_space": "lab"} if method.startswith("cyclegan") else {}
        self.method = registry.create_method(method, size=settings.size, device=self.device, batch_size=batch, **lab)
        self.precision = resolve_precision("auto", self.device)
        self.sampler = BatchSampler(training_images(settings.size), size=settings.size, batch_size=batch, seed=0,
                                    device=self.device, unpaired=self.method.unpaired)

    def run(self, steps: int) -> None:
        record = train(self.method, self.sampler, Budget.parse(f"{steps}steps"), precision=self.precision)
        assert record.steps == steps  # train() raises Diverged on a non-finite loss

    def flops_per_step(self) -> int:
        return probe(self.method, self.sampler, precision=self.precision)["flops_per_step"]

    def data_seconds(self) -> float:
        return timed(lambda n: [self.sampler.next() for _ in range(n)], DATA_BATCHES, self.device) / DATA_BATCHES

    def parameters(self) -> dict[str, int]:
        return self.method.parameter_counts()


class ReferenceSide:
    precision = "fp32"

    def __init__(self, method: str, batch: int, settings: Settings):
        self.device = settings.device
        torch.manual_seed(0)
        self.model = reference_nets.REFERENCE_MODELS[method](settings.size, self.device)
        host = BatchSampler(training_images(settings.size), size=settings.size, batch_size=batch, seed=0,
                            device="cpu").next()
        self.data = reference_nets.reference_input(method, host.L, host.ab)
        self.loop_state: dict = {}

    def run(self, steps: int) -> None:
        reference_nets.run_reference_steps(self.model, self.data, steps, self.loop_state)

    def flops_per_step(self) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            self.run(1)
        return int(counter.get_total_flops())

    def data_seconds(self) -> None:
        return None  # batches come collated from the host, as from its DataLoader

    def parameters(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.model.nets().items()}


SIDES = {"colorbench": ColorbenchSide, "reference": ReferenceSide}


@pytest.mark.parametrize("method, side, batch_kind", CASES)
@pytest.mark.parametrize("device", DEVICES)
def test_training_step_side_by_side(benchmark, device, method, side, batch_kind):
    settings = Settings.for_device(device)
    if settings.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # bench run's prepare() and the reference's BaseModel both set it
    make_side = lambda batch: SIDES[side](method, batch, settings)  # noqa: E731
    tried = None
    if batch_kind == "1":
        batch = 1
    else:
        batch, tried = fill_batch((device, method, side, settings.size, settings.max_batch), make_side, settings)
    runner = make_side(batch)
    try:
        runner.run(settings.warmup_steps)  # before choosing N
        steps = steps_per_round(runner.run, settings)
        flops = runner.flops_per_step()

        def one_round():
            runner.run(steps)
            synchronize(settings.device)

        benchmark.pedantic(one_round, rounds=settings.rounds, warmup_rounds=1, iterations=1)
        seconds = benchmark.stats.stats.median
        data_s = runner.data_seconds()
        row = {
            "section": "train", "device": device, "device_name": device_name(settings.device), "method": method,
            "side": side, "batch_kind": batch_kind, "batch": batch, "size": settings.size,
            "precision": runner.precision, "steps_per_round": steps, "rounds": settings.rounds,
            "round_s_median": seconds, "step_ms": 1e3 * seconds / steps, "images_per_s": batch * steps / seconds,
            "flops_per_step": flops, "gflop_per_image": flops / batch / 1e9,
            **utilisation(flops, steps, seconds, settings.device, runner.precision),
            "data_ms": None if data_s is None else 1e3 * data_s,
            "data_share": None if data_s is None else data_s / (seconds / steps),
            "fill_search": {str(b): v for b, v in tried.items()} if tried else None,
            "parameters": runner.parameters(),
            "cudnn_allow_tf32": tf32_enabled()[1] if device == "cuda" else None,
        }
    finally:
        runner = None  # frees its networks before the next side is built
        free_memory(settings.device)
    reference = find_result(section="train", device=device, method=method, side="reference", batch_kind="1")
    row["ratio_vs_reference_b1"] = row["images_per_s"] / reference["images_per_s"] if reference else None
    RESULTS.append(row)
    benchmark.extra_info.update(row)
    assert math.isfinite(row["images_per_s"]) and row["images_per_s"] > 0
    assert row["gflop_per_image"] > 0
