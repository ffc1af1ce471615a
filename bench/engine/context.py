"""What the runs of one process share: the run context (data decoded once, metrics, weights, settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.data import ImageSet
from bench.engine.budget import Budget
from bench.engine.distributed import World


@dataclass
class RunContext:
    """What the runs of one process share: data decoded once, metrics, weights, settings."""

    dataset: object  # bench.dataset.Dataset
    size: int
    train_set: ImageSet
    test_set: ImageSet
    weights: object  # bench.weights.WeightStore
    metric_context: object  # bench.metric.MetricContext
    metric_names: list[str]
    device: torch.device
    budget: Budget
    out: Path
    eval_batch_size: int = 32
    test_draws: int = 1  # test-time draws scored for a method random at test time (draw 0 is the ranked one)
    samples: int = 8
    checkpoint_every: float = 300.0
    tensorboard: bool = False  # event files in each run's folder (bench.engine.live); not part of the identity
    force: bool = False
    fresh: bool = False
    compile_mode: str | None = None  # torch.compile mode for every method's networks (None: eager)
    should_stop: object = field(default=lambda: False)
    write_index: bool = True  # False in a launcher's workers: the driver indexes what they return
    world: World = field(default_factory=World)  # the ranks of a torchrun run (one process: World())
    device_label: str | None = None  # the device's name when this process does not train (Ray's driver)
