"""A grid's settings (:class:`RunConfig`, what ``bench run`` was asked) and what the runs of one process share
(:class:`RunContext`: the data decoded once, metrics, weights, settings), made from it by :func:`prepare` -- in
``bench run`` itself and in every launcher's worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from bench import registry
from bench.data import ImageSet, cache_dir, load_split, train_load_size
from bench.dataset import Dataset
from bench.duplicates import check_duplicates
from bench.engine.budget import Budget
from bench.engine.distributed import World
from bench.engine.training import PRECISIONS
from bench.environment import device_name
from bench.errors import BenchError
from bench.metric import MetricContext
from bench.progress import log
from bench.store.identity import hardware_class
from bench.weights import WeightStore

DEFAULT_CHECKPOINT_EVERY = 300.0  # seconds of training between resume checkpoints
MAX_TEST_DRAWS = 100  # each draw is one more pass over the test split


@dataclass
class RunContext:
    """What the runs of one process share: data decoded once, metrics, weights, settings."""

    dataset: Dataset
    size: int
    train_set: ImageSet
    test_set: ImageSet
    weights: WeightStore
    metric_context: MetricContext
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
    should_stop: Callable[[], bool] = field(default=lambda: False)
    world: World = field(default_factory=World)  # the ranks of a torchrun run (one process: World())
    device_label: str | None = None  # the device's name when this process does not train (Ray's driver)

    @property
    def hardware(self) -> tuple[str, int, str]:
        """(device name, device count, hardware class) the runs train on -- the one place they are read: the
        name Ray's driver was given for its cluster's GPUs, else this process's device; the ranks' count."""
        name, count = self.device_label or device_name(self.device), self.world.size
        return name, count, hardware_class(name, count)


@dataclass
class RunConfig:
    methods: list[str]
    dataset: str
    budget: Budget
    device: torch.device
    out: Path
    size: int | None = None  # None: the dataset's default
    seeds: list[int] = field(default_factory=lambda: [0])
    metrics: list[str] | None = None  # None: every registered metric
    method_options: dict[str, dict] = field(default_factory=dict)  # method -> {option: value}
    dataset_options: dict = field(default_factory=dict)
    data_root: Path | None = None
    weights_dir: Path | None = None
    eval_batch_size: int = 32
    test_draws: int = 1  # test-time draws scored for methods random at test time (the spread over draws)
    samples: int = 8
    precision: str = "auto"  # auto: bf16 on CUDA, fp32 on the CPU
    force: bool = False  # run finished runs again, replacing their results
    fresh: bool = False  # ignore resume states: interrupted runs start over
    checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY
    tensorboard: bool = False  # write TensorBoard event files into each run's folder (not part of the identity)
    compile_mode: str | None = None  # torch.compile every method's networks with this mode
    launcher: str = "local"  # bench.launch.LAUNCHERS
    jobs: int = 1  # --launcher local: runs at once on this machine
    ray_address: str | None = None  # --launcher ray: a running cluster (auto | HOST:PORT); None starts Ray here
    cpus_per_run: int | None = None  # torch threads of a CPU run / CPUs of a Ray task (bench.launch.cpu_threads)
    device_name: str | None = None  # the device's name when this machine cannot see it (a Ray cluster's GPUs)
    world: World = field(default_factory=World)  # under torchrun: this process's rank (one run on several devices)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise BenchError(f"--precision {precision!r}: choose auto, {', '.join(PRECISIONS)}")
    return precision


def make_dataset(name: str, options: dict, data_root: Path | None):
    from bench.data import data_root as resolve_root

    cls = registry.datasets().get(name).cls
    return cls(resolve_root(data_root), cls.Options.from_dict(options))


def prepare(config: RunConfig) -> RunContext:
    """Decode the data once and set up metrics: what every run of this command shares."""
    if config.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    dataset = make_dataset(config.dataset, config.dataset_options, config.data_root)
    size = config.size or dataset.default_size
    for method in config.methods:  # the dataset's default size, checked before any training too
        cls = registry.methods().get(method).cls
        cls.check_size(size, cls.Options.from_dict(config.method_options.get(method, {})))
    weights = WeightStore(config.weights_dir)
    world = config.world
    if not world.is_main:
        world.barrier()  # rank 0 decodes (and caches) the data first; the others read its cache
    train_set = load_split(dataset, "train", train_load_size(size), log=log)
    test_set = load_split(dataset, "test", size, log=log)
    test_set = check_duplicates(dataset, train_set, test_set, log=log)  # drops them if the dataset says so
    if world.is_main:
        world.barrier()
    log(f"{dataset.name}: {len(train_set)} train / {len(test_set)} test images at {size}px, budget {config.budget.label}")
    metric_context = MetricContext(
        device=config.device, weights=weights, cache_dir=cache_dir() / "reference-stats",
        reference_key=f"{dataset.cache_key()}-test-{size}-{test_set.fingerprint}",  # changed test images, another key
    )
    return RunContext(
        dataset=dataset, size=size, train_set=train_set, test_set=test_set, weights=weights,
        metric_context=metric_context, metric_names=config.metrics or registry.list_metrics(),
        device=config.device, budget=config.budget, out=Path(config.out), eval_batch_size=config.eval_batch_size,
        test_draws=config.test_draws, samples=config.samples, checkpoint_every=config.checkpoint_every,
        tensorboard=config.tensorboard, force=config.force, fresh=config.fresh,
        compile_mode=config.compile_mode, world=world, device_label=config.device_name,
    )
