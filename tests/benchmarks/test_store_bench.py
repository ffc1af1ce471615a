"""What verifying stored artefacts costs, and what a checkpoint weighs (the README's "Every stored artefact is
verified" and "Disk per run" figures).

Run: python -m pytest tests/benchmarks/test_store_bench.py --benchmark-only
``content_digest`` of pix2pix's full training state at 256² (what a resume.pt seals) and of the flowers 64²
training split's decode cache; extra_info holds the bytes and GB/s, and each built-in method's checkpoint.pt
against its full state after one training step.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._pytree import tree_leaves

from bench import registry
from bench.engine.checkpoint import save_checkpoint
from bench.method import Batch, training_step
from bench.store.digest import content_digest, save_sealed


def _bytes(value) -> int:
    return sum(t.numel() * t.element_size() for t in tree_leaves(value) if isinstance(t, torch.Tensor))


def _trained_once(name: str, size: int, **options):
    torch.manual_seed(0)
    method = registry.create_method(name, size=size, **options)
    planes = lambda c: torch.zeros(2, c, size, size)  # noqa: E731
    method.train_mode()
    training_step(method, Batch(planes(1), planes(2), *((planes(1), planes(2)) if method.unpaired else ())), 0.0)
    return method


def test_digest_of_a_full_training_state(benchmark):
    state = _trained_once("pix2pix", 256).state_dict()
    benchmark.pedantic(content_digest, args=(state,), rounds=5, warmup_rounds=1)
    size = _bytes(state)
    benchmark.extra_info.update(bytes=size, gb_per_s=size / benchmark.stats.stats.median / 1e9)


def test_digest_of_a_decode_cache_entry(benchmark):
    images = torch.randint(0, 256, (1020, 3, 72, 72), dtype=torch.uint8)  # flowers train at 64² (stored at 72²)
    benchmark.pedantic(content_digest, args=({"images": images},), rounds=10, warmup_rounds=1)
    benchmark.extra_info.update(bytes=images.numel(), gb_per_s=images.numel() / benchmark.stats.stats.median / 1e9)


@pytest.mark.parametrize("name, options", [("baseline", {}), ("pix2pix", {}), ("unet-l2", {}),
                                           ("pix2pix-resnet18-scratch", {"batch_size": 1}),
                                           ("cyclegan-paired", {}), ("cyclegan-unpaired", {})])
@pytest.mark.parametrize("size", [64, 256])
def test_checkpoint_against_full_state(benchmark, tmp_path, name, options, size):
    method = _trained_once(name, size, **options)
    full, checkpoint = tmp_path / "full.pt", tmp_path / "checkpoint.pt"
    benchmark.pedantic(save_checkpoint, args=(checkpoint, method, name, "flowers", 1), rounds=1, iterations=1)
    save_sealed(full, {"state": method.state_dict()})
    benchmark.extra_info.update(checkpoint_mb=checkpoint.stat().st_size / 1e6, full_state_mb=full.stat().st_size / 1e6)
    assert checkpoint.stat().st_size < full.stat().st_size
