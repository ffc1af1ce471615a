"""``bench run``: every method x seed on one dataset under one budget, each recorded as a result.

Per run: seed -> build the method -> train under the budget -> colorize the test split -> all
metrics in one pass -> checkpoint, samples, result.json and the SQLite index. A method that fails
is recorded as failed (with its error) and the others go on; one that cannot run here (e.g.
missing pretrained weights) is recorded as skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import random
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench import registry, store
from bench.engine.budget import Budget
from bench.engine.checkpoint import save_checkpoint
from bench.data import BatchSampler, ImageSet, cache_dir, load_split, train_load_size
from bench.environment import environment
from bench.errors import BenchError, Unavailable
from bench.evaluate import build_metrics, evaluate
from bench.inference import colorize_uint8, gray_uint8, sample_indices, save_png
from bench.method import MethodContext
from bench.metric import MetricContext
from bench.progress import log
from bench.engine.training import train
from bench.weights import WeightStore

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
    samples: int = 8

    def for_result(self, method: str, seed: int, size: int) -> dict:
        """The config that fully describes one run (with its seed)."""
        return {
            "method": method,
            "method_options": self.method_options.get(method, {}),
            "dataset": self.dataset,
            "dataset_options": self.dataset_options,
            "size": size,
            "seed": seed,
            "budget": self.budget.label,
            "device": str(self.device),
            "metrics": self.metrics,
            "eval_batch_size": self.eval_batch_size,
        }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_dataset(name: str, options: dict, data_root: Path | None):
    from bench.data import data_root as resolve_root

    cls = registry.datasets().get(name).cls
    return cls(resolve_root(data_root), cls.Options.from_dict(options))


def validate(config: RunConfig) -> None:
    """Fail fast, before any training, on names and options the user got wrong."""
    for method in config.methods:
        cls = registry.methods().get(method).cls
        cls.Options.from_dict(config.method_options.get(method, {}))
    for metric in config.metrics or []:
        registry.metrics().get(metric)
    registry.datasets().get(config.dataset)


def run_benchmark(config: RunConfig) -> list[dict]:
    validate(config)
    if config.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    dataset = make_dataset(config.dataset, config.dataset_options, config.data_root)
    size = config.size or dataset.default_size
    weights = WeightStore(config.weights_dir)
    train_set = load_split(dataset, "train", train_load_size(size), log=log)
    test_set = load_split(dataset, "test", size, log=log)
    log(f"{dataset.name}: {len(train_set)} train / {len(test_set)} test images at {size}px, budget {config.budget.label}")
    metric_names = config.metrics or registry.list_metrics()
    metric_context = MetricContext(
        device=config.device, weights=weights, cache_dir=cache_dir() / "reference-stats",
        reference_key=f"{dataset.cache_key()}-test-{size}",
    )
    results = []
    for seed in config.seeds:
        for method in config.methods:
            results.append(run_one(config, method, seed, size, dataset, train_set, test_set, weights, metric_context, metric_names))
    return results


def run_one(config, method_name, seed, size, dataset, train_set: ImageSet, test_set: ImageSet,
            weights, metric_context, metric_names) -> dict:
    entry = registry.methods().get(method_name)
    directory = store.run_dir(config.out, dataset.name, method_name, seed)
    result = {
        "schema": store.SCHEMA,
        "method": method_name,
        "method_plugin": entry.plugin,
        "method_description": entry.description,
        "dataset": dataset.name,
        "size": size,
        "seed": seed,
        "status": "ok",
        "error": None,
        "budget": config.budget.to_dict() | {"used": 0.0, "steps": 0},
        "metrics": {},
        "metric_details": {},
        "timings": {},
        "environment": environment(config.device),
        "config": config.for_result(method_name, seed, size),
        "data": {
            "info": dataset.info(),
            "train_images": len(train_set),
            "test_images": len(test_set),
            "dropped": {"train": train_set.dropped, "test": test_set.dropped},
        },
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    label = f"{method_name} seed {seed}"
    try:
        seed_everything(seed)
        options = entry.cls.Options.from_dict(config.method_options.get(method_name, {}))
        result["config"]["method_options"] = options.to_dict()
        method = entry.cls(options, MethodContext(size=size, device=config.device, weights=weights))
        result["parameters"] = method.parameter_counts()
        sampler = BatchSampler(train_set.images, size=size, batch_size=options.batch_size, seed=seed,
                               device=config.device, unpaired=method.unpaired)
        record = train(method, sampler, config.budget, label=f"train {label}")
        result["budget"].update(used=record.seconds if config.budget.kind == "time" else record.steps, steps=record.steps)
        result["history"] = record.history()
        result["timings"] = {
            "train_s": record.seconds,
            "steps": record.steps,
            "train_images_per_s": record.images / record.seconds if record.seconds else None,
        }
        save_checkpoint(directory / "checkpoint.pt", method, method_name, dataset.name, record.steps)
        preds, infer_s = colorize_uint8(method, test_set.images, batch_size=config.eval_batch_size, label=f"colorize {label}")
        metrics, unavailable = build_metrics(metric_names, metric_context)
        targets = test_set.images.to(config.device)
        batches = (
            (preds[i : i + config.eval_batch_size], targets[i : i + config.eval_batch_size])
            for i in range(0, len(test_set), config.eval_batch_size)
        )
        details = unavailable | evaluate(batches, metrics, len(test_set), label=f"metrics {label}")
        details = {name: details[name] for name in metric_names}
        eval_s = infer_s + max((d.get("pass_s", 0.0) for d in details.values()), default=0.0)
        result["timings"].update(
            infer_s=infer_s, eval_s=eval_s,
            infer_images_per_s=len(test_set) / infer_s if infer_s else None,
            eval_images_per_s=len(test_set) / eval_s if eval_s else None,
        )
        result["per_image"] = {"names": test_set.names} | {
            name: d.pop("per_image") for name, d in details.items() if "per_image" in d
        }
        result["metric_details"] = details
        result["metrics"] = {name: d.get("value") for name, d in details.items()}
        result["samples"] = save_samples(directory, preds, test_set, config.samples)
    except Unavailable as error:
        result.update(status="skipped", error=str(error))
    except BenchError as error:
        result.update(status="failed", error=str(error))
    except Exception as error:  # a failing method is recorded, and the others go on
        result.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    if result["status"] != "ok":
        log(f"{label}: {result['status']}: {result['error']}")
    store.write_result(config.out, directory, result)
    return result


def save_samples(directory: Path, preds: torch.Tensor, test_set: ImageSet, count: int) -> list[dict]:
    """A few test images as PNGs: the gray input, this method's output, the ground truth."""
    folder = directory / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    indices = sample_indices(count, len(test_set))
    truth = test_set.images[indices]
    gray = gray_uint8(truth)
    samples = []
    for k, index in enumerate(indices):
        stem = f"{k:02d}-{store.safe_name(test_set.names[index])}"
        files = {"gray": f"{stem}.gray.png", "pred": f"{stem}.pred.png", "truth": f"{stem}.truth.png"}
        save_png(gray[k], folder / files["gray"])
        save_png(preds[index], folder / files["pred"])
        save_png(truth[k], folder / files["truth"])
        samples.append({"name": test_set.names[index], "index": index} | {k2: f"samples/{v}" for k2, v in files.items()})
    return samples
