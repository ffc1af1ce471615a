"""Speed of the evaluation pass: every registered metric that can run here, in one batched pass.

Run: python -m pytest tests/benchmarks/test_eval_bench.py --benchmark-only
Images/s is in extra_info (`--benchmark-json` keeps it). FID/KID are included when their weights
are present (not on the offline CI machine, where they are recorded as unavailable in no time).
"""

from __future__ import annotations

import pytest
import torch

from bench import registry
from bench.evaluate import build_metrics, evaluate
from bench.metric import MetricContext
from bench.weights import WeightStore

IMAGES, BATCH = 32, 16


@pytest.mark.parametrize("size", [64, 256])
def test_evaluation_pass(benchmark, shared_weights_dir, size):
    g = torch.Generator().manual_seed(size)
    targets = torch.randint(0, 256, (IMAGES, 3, size, size), generator=g, dtype=torch.uint8)
    noise = torch.randint(-40, 41, targets.shape, generator=g, dtype=torch.int16)
    preds = (targets.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
    context = MetricContext(device=torch.device("cpu"), weights=WeightStore(shared_weights_dir))
    names = registry.list_metrics()

    def one_pass():
        metrics, unavailable = build_metrics(names, context)
        batches = [(preds[i : i + BATCH], targets[i : i + BATCH]) for i in range(0, IMAGES, BATCH)]
        return unavailable | evaluate(batches, metrics, IMAGES)

    results = benchmark.pedantic(one_pass, rounds=3, warmup_rounds=1, iterations=1)
    computed = sorted(name for name, r in results.items() if r["status"] == "ok")
    assert {"psnr", "ssim", "lpips"} <= set(computed)
    benchmark.extra_info.update(
        images=IMAGES, size=size, device="cpu", threads=torch.get_num_threads(), metrics=computed,
        unavailable=sorted(set(results) - set(computed)),
        images_per_s=IMAGES / benchmark.stats.stats.mean,
    )
