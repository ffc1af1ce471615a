"""The evaluation engine: every metric in one batched pass over (prediction, target) pairs.

Batches arrive on the evaluation device (the runner colorizes them batch by batch) and every metric
runs there, in full precision: autocast and TF32 are off around the metric calls only, so a
generator that colorizes between batches keeps its own precision. Per-image values stay on the
device and are fetched once, after the last batch; each mean gets a 95 % percentile-bootstrap
confidence interval.

Timing: each entry reports its metric's own time (``eval_s``, ``eval_images_per_s``) and the whole
pass (``pass_s``, ``pass_images_per_s``: from the first batch requested to the last value computed,
producing the batches included). A metric's time is measured around its own calls -- on CUDA with
events read after the pass (no host sync per batch), elsewhere with the host clock -- so work that
metrics share (one Inception pass for FID and KID) counts for the first metric that asks.

Metrics that cannot run (``Unavailable``) are recorded with their reason; a metric that fails is
recorded as failed, and the others still count.
"""

from __future__ import annotations

import time
import traceback
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterable

import torch

from bench import registry
from bench.color import uint8_to_float
from bench.errors import Unavailable
from bench.metric import Metric, MetricContext
from bench.progress import progress_bar
from bench.stats import bootstrap_ci
from bench.tf32 import tf32_disabled


def _header(cls) -> dict:
    return {"higher_is_better": cls.higher_is_better, "description": cls.description}


def build_metrics(names: Iterable[str], context: MetricContext) -> tuple[list[Metric], dict[str, dict]]:
    """Instantiate metrics for one pass; those that cannot run here become result entries right away."""
    context.shared.clear()  # scratch shared between the metrics of one pass (e.g. Inception features)
    ready, results = [], {}
    for name in names:
        cls = registry.metrics().get(name).cls
        try:
            ready.append(cls(context))
        except Unavailable as error:
            results[name] = {"status": "unavailable", "reason": str(error), "value": None, **_header(cls)}
    return ready, results


@contextmanager
def full_precision(device_type: str):
    """Autocast and TF32 off (restored afterwards): metrics keep equalling their fp32 references."""
    with tf32_disabled(), torch.autocast(device_type, enabled=False):
        yield


class MetricClock:
    """Seconds spent in each metric's calls; on CUDA from events, read once after the pass."""

    def __init__(self):
        self._seconds: dict[str, float] = defaultdict(float)
        self._events: dict[str, list] = defaultdict(list)

    @contextmanager
    def timing(self, name: str, device: torch.device):
        if device.type == "cuda":
            stream = torch.cuda.current_stream(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            try:
                yield
            finally:
                end.record(stream)
                self._events[name].append((start, end))
        else:
            began = time.perf_counter()
            try:
                yield
            finally:
                self._seconds[name] += time.perf_counter() - began

    def seconds(self, name: str) -> float:
        """Call after the device has been synchronised."""
        return self._seconds[name] + sum(start.elapsed_time(end) for start, end in self._events[name]) / 1000


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"


def _synchronize(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], metrics: list[Metric], total: int,
             *, label: str = "evaluate") -> dict[str, dict]:
    """Run every metric over uint8 (N, 3, H, W) prediction/target batches, in one pass."""
    per_image: dict[str, list[torch.Tensor]] = {m.name: [] for m in metrics if m.per_image}
    failed: dict[str, str] = {}
    clock = MetricClock()
    counted, device = 0, None
    start = time.perf_counter()
    with torch.no_grad(), progress_bar(label, total=total) as advance:
        for pred_u8, target_u8 in batches:
            device = pred_u8.device
            with full_precision(device.type):
                pred, target = uint8_to_float(pred_u8), uint8_to_float(target_u8)
                for metric in metrics:
                    if metric.name in failed:
                        continue
                    try:
                        with clock.timing(metric.name, device):
                            values = metric.update(pred, target)
                        if metric.per_image:
                            if not isinstance(values, torch.Tensor) or tuple(values.shape) != (pred.shape[0],):
                                raise ValueError(f"update returned {getattr(values, 'shape', values)!r} for a batch "
                                                 f"of {pred.shape[0]}; a per-image metric returns one value per image")
                            per_image[metric.name].append(values.detach().to(torch.float64))
                    except Exception as error:  # one broken metric must not sink the others
                        failed[metric.name] = _failure(error)
            counted += pred_u8.shape[0]
            advance(pred_u8.shape[0])
        with full_precision(device.type if device is not None else "cpu"):
            for metric in metrics:
                if metric.name not in failed:
                    try:
                        with clock.timing(metric.name, device or torch.device("cpu")):
                            metric.finish()
                    except Exception as error:
                        failed[metric.name] = _failure(error)
            _synchronize(device)
            values = _fetch_per_image({name: chunks for name, chunks in per_image.items() if name not in failed})
            results = {}
            for metric in metrics:
                began = time.perf_counter()
                results[metric.name] = _entry(metric, failed.get(metric.name), values.get(metric.name))
                metric_s = clock.seconds(metric.name) + time.perf_counter() - began
                results[metric.name].update(eval_s=metric_s, eval_images_per_s=counted / metric_s if metric_s else None)
    pass_s = time.perf_counter() - start
    for entry in results.values():
        entry.update(pass_s=pass_s, pass_images_per_s=counted / pass_s if pass_s else None)
    return results


def _fetch_per_image(chunks: dict[str, list[torch.Tensor]]):
    """Every metric's per-image values as numpy float64, in one transfer from the device."""
    chunks = {name: parts for name, parts in chunks.items() if parts}
    if not chunks:
        return {}
    first = next(iter(chunks.values()))[0]
    stacked = torch.stack([torch.cat([p.to(first.device) for p in parts]) for parts in chunks.values()])
    return dict(zip(chunks, stacked.cpu().numpy()))


def _entry(metric: Metric, failure: str | None, values) -> dict:
    base = {"settings": metric.settings, **_header(type(metric))}
    if failure is not None:
        return {"status": "failed", "reason": failure, "value": None, **base}
    if metric.per_image:
        if values is None:  # no batch at all
            return {"status": "failed", "reason": "no images were evaluated", "value": None, **base}
        return {
            "status": "ok",
            "value": float(values.mean()),
            "ci95": bootstrap_ci(values),
            "n": int(values.size),
            "per_image": [float(v) for v in values],
            **base,
        }
    try:
        return {"status": "ok", **metric.compute(), **base}
    except Unavailable as error:
        return {"status": "unavailable", "reason": str(error), "value": None, **base}
    except Exception as error:
        return {"status": "failed", "reason": f"{type(error).__name__}: {error}", "value": None, **base}
