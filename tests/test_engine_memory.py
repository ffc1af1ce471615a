"""Sizes and batch sizes are checked against the memory available before anything is decoded or trained (issue 17,
item 9): a one-line refusal, never the out-of-memory killer."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from bench import memory, registry
from bench.errors import BenchError


def test_a_split_too_large_to_decode_is_refused_before_decoding(run_cli, tmp_path, monkeypatch):
    decoded = []
    monkeypatch.setattr("bench.data.decode_all", lambda *a, **k: decoded.append(a))
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--size", "100000", "--seeds", "1",
                           "--budget", "1steps", "--device", "cpu", "--out", tmp_path / "runs")
    assert code == 2 and not decoded
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "sample/train: 168 images at 112500px need" in line and "TB of memory decoded" in line and "choose a smaller --size" in line


def test_a_batch_too_large_for_memory_fails_its_run_in_one_line_before_training(run_cli, tmp_path):
    code, stdout, _ = run_cli("run", "--methods", "pix2pix", "--dataset", "sample", "--size", "64", "--seeds", "1",
                              "--budget", "1steps", "--device", "cpu", "--metrics", "psnr", "-o", "batch_size=100000",
                              "--out", tmp_path / "runs", "--json")
    (printed,) = json.loads(stdout)
    assert code == 3 and printed["status"] == "failed" and printed["budget"]["steps"] == 0
    assert printed["error"].startswith("batch size 100000 at 64px needs at least ")
    assert "use a smaller -o batch_size or --size" in printed["error"] and "\n" not in printed["error"]


def test_the_step_bound_is_the_weights_plus_a_share_linear_in_the_batch(monkeypatch):
    torch.manual_seed(0)
    method = registry.create_method("pix2pix", size=32, ngf=8, ndf=8)
    weights = sum(t.numel() * t.element_size() for net in method.nets.values()
                  for t in list(net.parameters()) + list(net.buffers()))
    one, many = (memory.step_lower_bound(method, b, 32, autocast=contextlib.nullcontext()) for b in (3, 300))
    assert weights < one < many and many - weights == 100 * (one - weights)
    # At least the first convolution's input and output for each image (1 + 8 channels at 16², float32) ...
    assert one - weights >= 3 * (1 * 32 * 32 + 8 * 16 * 16) * 4
    monkeypatch.setattr(memory, "available_bytes", lambda device: many - 1)  # ... and refused just above it
    assert memory.check_training_step(method, 3, 32, autocast=contextlib.nullcontext()) == one
    with pytest.raises(BenchError, match="batch size 300 at 32px needs at least"):
        memory.check_training_step(method, 300, 32, autocast=contextlib.nullcontext())
