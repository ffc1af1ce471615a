"""The evaluation engine: every metric in one batched pass over (prediction, target) pairs.

Per-image values are kept; each mean gets a 95 % percentile-bootstrap confidence interval.
Metrics that cannot run (``Unavailable``) are recorded with their reason; a metric that fails is
recorded as failed, and the others still count.
"""

from __future__ import annotations

import time
import traceback
from typing import Iterable

import torch

from bench import registry
from bench.color import uint8_to_float
from bench.errors import Unavailable
from bench.metric import Metric, MetricContext
from bench.progress import progress_bar
from bench.stats import bootstrap_ci

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


def evaluate(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], metrics: list[Metric], total: int,
             *, label: str = "evaluate") -> dict[str, dict]:
    """Run every metric over uint8 (N, 3, H, W) prediction/target batches, in one pass."""
    per_image = {m.name: [] for m in metrics if m.per_image}
    failed: dict[str, str] = {}
    counted = 0
    start = time.perf_counter()
    with torch.no_grad(), progress_bar(label, total=total) as advance:
        for pred_u8, target_u8 in batches:
            pred, target = uint8_to_float(pred_u8), uint8_to_float(target_u8)
            counted += pred.shape[0]
            for metric in metrics:
                if metric.name in failed:
                    continue
                try:
                    with torch.autocast(pred.device.type, enabled=False):  # metrics run in full precision
                        values = metric.update(pred, target)
                except Exception as error:  # one broken metric must not sink the others
                    failed[metric.name] = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"
                    continue
                if metric.per_image:
                    per_image[metric.name].append(values.detach().double().cpu())
            advance(pred.shape[0])
    results = {}
    for metric in metrics:
        base = {"settings": metric.settings, **_header(type(metric))}
        if metric.name in failed:
            results[metric.name] = {"status": "failed", "reason": failed[metric.name], "value": None, **base}
            continue
        if metric.per_image:
            values = torch.cat(per_image[metric.name]).numpy()
            results[metric.name] = {
                "status": "ok",
                "value": float(values.mean()),
                "ci95": bootstrap_ci(values),
                "n": int(values.size),
                "per_image": [float(v) for v in values],
                **base,
            }
        else:
            try:
                results[metric.name] = {"status": "ok", **metric.compute(), **base}
            except Unavailable as error:
                results[metric.name] = {"status": "unavailable", "reason": str(error), "value": None, **base}
            except Exception as error:
                results[metric.name] = {"status": "failed", "reason": f"{type(error).__name__}: {error}", "value": None, **base}
    seconds = time.perf_counter() - start
    for entry in results.values():
        entry["eval_s"] = seconds
        entry["eval_images_per_s"] = counted / seconds if seconds else None
    return results
