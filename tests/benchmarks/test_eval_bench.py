"""Speed of the evaluation pass, and of SSIM against scikit-image.

Run: python -m pytest tests/benchmarks/test_eval_bench.py --benchmark-only
Images/s (the pass's and each metric's) is in extra_info (`--benchmark-json` keeps it). FID/KID are
included when their weights are present (not on the offline CI machine, where they are recorded as
unavailable in no time); LPIPS, fd-alex and kd-alex when the LPIPS AlexNet trunk is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench import registry
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.metric import MetricContext
from bench.metrics.fidelity import ssim
from bench.weights import WeightStore

BATCH = 32


def noisy_pairs(count: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 256, (count, 3, size, size), generator=g, dtype=torch.uint8)
    noise = torch.randint(-40, 41, targets.shape, generator=g, dtype=torch.int16)
    return (targets.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8), targets


@pytest.mark.parametrize("images, size", [(340, 64), (32, 256)])  # the flowers test split; a 256² batch
def test_evaluation_pass(benchmark, shared_weights_dir, images, size):
    preds, targets = noisy_pairs(images, size, seed=size)
    context = MetricContext(device=torch.device("cpu"), weights=WeightStore(shared_weights_dir))
    names = registry.list_metrics()

    def one_pass():
        metrics, unavailable = build_metrics(names, context)
        batches = [(preds[i : i + BATCH], targets[i : i + BATCH]) for i in range(0, images, BATCH)]
        return unavailable | evaluate(batches, metrics, images)

    results = benchmark.pedantic(one_pass, rounds=3, warmup_rounds=1, iterations=1)
    computed = sorted(name for name, r in results.items() if r["status"] == "ok")
    assert {"psnr", "ssim", "lpips", "fd-alex", "kd-alex"} <= set(computed)
    benchmark.extra_info.update(
        images=images, size=size, device="cpu", threads=torch.get_num_threads(), metrics=computed,
        unavailable=sorted(set(results) - set(computed)),
        images_per_s=images / benchmark.stats.stats.mean,
        metric_images_per_s={name: round(results[name]["eval_images_per_s"], 1) for name in computed},
    )


@pytest.mark.parametrize("implementation", ["ours", "scikit-image"])
def test_ssim_256(benchmark, implementation):
    """32 images at 256²: the separable float32 filter against scikit-image's loop (float64, one image at a time)."""
    from skimage.metrics import structural_similarity

    preds, targets = (images.float() / 255 for images in noisy_pairs(32, 256, seed=1))
    if implementation == "ours":
        run = lambda: ssim(preds, targets).numpy()  # noqa: E731
    else:
        pred_hwc, target_hwc = (images.permute(0, 2, 3, 1).double().numpy() for images in (preds, targets))
        run = lambda: np.array([  # noqa: E731
            structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=1, channel_axis=-1)
            for p, t in zip(pred_hwc, target_hwc)
        ])
    values = benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
    assert values.shape == (32,) and 0 < values.min() < values.max() < 1
    benchmark.extra_info.update(images=32, size=256, threads=torch.get_num_threads(),
                                images_per_s=32 / benchmark.stats.stats.mean)
