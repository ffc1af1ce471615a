"""Speed of one training step of each built-in method (default options and batch size).

``pix2pix-resnet18`` is timed through ``pix2pix-resnet18-scratch``: the same network and step,
without the ImageNet weights that are not available everywhere.

Run: python -m pytest tests/benchmarks/test_train_step_bench.py --benchmark-only
64x64 on the CPU always; 256x256 on CUDA when a GPU is present (each step synchronised, so the
time is the GPU's). Images/s is in extra_info (`--benchmark-json` keeps it).
"""

from __future__ import annotations

import pytest
import torch

from bench import registry
from bench.api import Batch, training_step

METHODS = ("baseline", "unet-l2", "pix2pix", "pix2pix-resnet18-scratch", "cyclegan-paired", "cyclegan-unpaired")
SETTINGS = [
    pytest.param("cpu", 64, id="cpu-64"),
    pytest.param("cuda", 256, id="cuda-256",
                 marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def training_batch(n: int, size: int, device: torch.device) -> Batch:
    g = torch.Generator().manual_seed(0)
    L = torch.rand(n, 1, size, size, generator=g) * 2 - 1
    ab = (torch.rand(n, 2, size, size, generator=g) - 0.5) * 0.6
    return Batch(L.to(device), ab.to(device), L.flip(0).to(device), ab.flip(0).to(device))


@pytest.mark.parametrize("device, size", SETTINGS)
@pytest.mark.parametrize("name", METHODS)
def test_train_step(benchmark, name, device, size):
    torch.manual_seed(0)
    device = torch.device(device)
    method = registry.create_method(name, size=size, device=device)
    batch = training_batch(method.options.batch_size, size, device)

    def one_step():
        losses = training_step(method, batch, 0.5)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return losses

    losses = benchmark.pedantic(one_step, rounds=5, warmup_rounds=1, iterations=1)
    assert all(torch.isfinite(torch.as_tensor(float(v))) for v in losses.values())
    benchmark.extra_info.update(
        method=name, size=size, device=str(device), batch_size=len(batch),
        threads=torch.get_num_threads(), images_per_s=len(batch) / benchmark.stats.stats.mean,
    )
