"""One run on several ranks: torchrun with the gloo backend on the CPU, 2 ranks (no GPU needed).

The test method is BatchNorm-free and deterministic; it saves the gradients of its first step. Two
ranks at batch B must give the gradients (and, after a few Adam steps, the weights) of one process
at batch 2B: the ranks draw disjoint slices of the same seeded global batch and DDP averages.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from bench import registry
from bench.engine.distributed import World
from tests.helpers import find_runs

PLUGIN = '''
import os
import torch
import torch.nn.functional as F
from torch import nn
from bench.api import Method, MethodOptions, hookimpl


class TinyRegression(Method):
    """Two convolutions, no BatchNorm, plain SGD: gradients comparable to the last bit."""

    name = "ddp-tiny"
    description = "distributed test method"
    Options = MethodOptions

    def __init__(self, options, context):
        super().__init__(options, context)
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1)).to(self.device)
        self.nets = {"G": self.net}
        self.optimizers = {"G": torch.optim.Adam(self.net.parameters(), lr=options.lr)}
        self.steps = 0

    def train_step(self, batch):
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss = F.mse_loss(self.net(batch.L), batch.ab)
        loss.backward()
        self.steps += 1
        if self.steps == 3 and os.environ.get("DDP_TEST_GRADS"):  # steps 1-2: the probe's (memory, FLOPs), outside DDP
            rank = os.environ.get("RANK", "0")
            grads = {name: p.grad.clone() for name, p in self.nets["G"].named_parameters()}
            torch.save(grads, os.path.join(os.environ["DDP_TEST_GRADS"], f"grads-{self.options.batch_size}-rank{rank}.pt"))
        self.optimizers["G"].step()
        return {"loss": loss.detach()}

    def colorize(self, L):
        return self.net(L)


class NoDDP(TinyRegression):
    name = "ddp-refused"
    supports_ddp = False


@hookimpl
def register_methods(register):
    register(TinyRegression)
    register(NoDDP)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory, install_plugin):
    """The test methods as an installed package, for torchrun's processes and for this one."""
    with install_plugin(tmp_path_factory.mktemp("site"), "ddp_test_plugin", PLUGIN) as site:
        yield site


def run_bench(site, tmp_path, *args, ranks: int | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "OMP_NUM_THREADS": "1",
                        "DDP_TEST_GRADS": str(tmp_path), "COLORBENCH_CACHE": str(tmp_path / "cache")}
    env.pop("WORLD_SIZE", None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"] if ranks \
        else [sys.executable]
    command = [*launcher, "-m", "bench", "-q", "run", "--dataset", "sample", "--size", "32", "--seeds", "1",
               "--device", "cpu", "--metrics", "psnr", "--samples", "2", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def run_bench_here(tmp_path, monkeypatch, *args) -> int:
    """``run_bench`` without ranks, in this process (no second start of Python and torch): one torch
    thread, as in the ranks' processes."""
    from bench.cli import main

    monkeypatch.setenv("DDP_TEST_GRADS", str(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(["-q", "run", "--dataset", "sample", "--size", "32", "--seeds", "1", "--device", "cpu",
                     "--metrics", "psnr", "--samples", "2", *[str(a) for a in args]])
    finally:
        torch.set_num_threads(threads)


def result_of(out, method: str) -> dict:
    (folder,) = find_runs(out, "sample", method, 0)
    return json.loads((folder / "result.json").read_text()) | {"_folder": str(folder)}


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_the_doubled_batch(plugin_site, tmp_path, monkeypatch):
    two = run_bench(plugin_site, tmp_path, "--methods", "ddp-tiny,cyclegan-paired,baseline", "--budget", "4steps",
                    "-o", "ddp-tiny.batch_size=2", "-o", "cyclegan-paired.ngf=4", "-o", "cyclegan-paired.ndf=4",
                    "--out", tmp_path / "two", ranks=2)
    # baseline's BatchNorm fails on CPU ranks (checked below): rank 0 exits 3, so torchrun reports a failure
    assert two.returncode != 0 and "exitcode  : 3" in two.stderr, two.stderr[-3000:]
    one = run_bench_here(tmp_path, monkeypatch, "--methods", "ddp-tiny", "--budget", "4steps",
                         "-o", "ddp-tiny.batch_size=4", "--out", tmp_path / "one")
    assert one == 0

    # The first step's gradients: each rank's (averaged by DDP) equals one process's on the doubled batch.
    single = torch.load(tmp_path / "grads-4-rank0.pt", weights_only=True)
    for rank in (0, 1):
        averaged = torch.load(tmp_path / f"grads-2-rank{rank}.pt", weights_only=True)
        for name, grad in single.items():
            torch.testing.assert_close(averaged[name], grad, rtol=1e-5, atol=1e-7)

    # After four Adam steps the weights still agree, and so do the test-split metrics.
    distributed, alone = result_of(tmp_path / "two", "ddp-tiny"), result_of(tmp_path / "one", "ddp-tiny")
    nets = [torch.load(os.path.join(r["_folder"], "checkpoint.pt"), weights_only=True)["state"]["nets"]["G"]
            for r in (distributed, alone)]
    for name in nets[1]:
        torch.testing.assert_close(nets[0][name], nets[1][name], rtol=1e-4, atol=1e-6)
    assert distributed["metrics"]["psnr"] == pytest.approx(alone["metrics"]["psnr"], abs=1e-3)
    assert len(distributed["per_image"]["psnr"]) == len(alone["per_image"]["psnr"])  # every test image, once

    # The result says how it was trained: 2 ranks, GPU-seconds = wall x 2, its own hardware class (board).
    timings = distributed["timings"]
    assert timings["world_size"] == 2 and timings["global_batch"] == 4
    assert timings["gpu_s"] == pytest.approx(2 * timings["train_s"])
    assert distributed["hardware"]["count"] == 2 and distributed["hardware"]["class"].endswith(" x2")
    assert alone["hardware"]["class"].endswith(" x1")
    assert distributed["identity"]["hardware"] != alone["identity"]["hardware"]

    # A GAN (frozen discriminators, several networks) trains on two ranks; BatchNorm on the CPU is refused.
    assert result_of(tmp_path / "two", "cyclegan-paired")["status"] == "ok"
    baseline = result_of(tmp_path / "two", "baseline")
    assert baseline["status"] == "failed" and "BatchNorm" in baseline["error"]


def test_a_method_can_refuse_several_ranks(plugin_site, tmp_path, monkeypatch):
    from bench.engine.distributed import check_supported
    from bench.errors import BenchError

    refused = registry.methods().get("ddp-refused").cls
    check_supported(refused, torch.device("cpu"), World())  # one process: fine
    with pytest.raises(BenchError, match="does not support training on several devices"):
        check_supported(refused, torch.device("cpu"), World(rank=0, size=2))


def test_world_shards_cover_every_item_once():
    for count in (0, 1, 5, 8, 341):
        for size in (1, 2, 3, 8):
            shards = [World(rank, size).shard(count) for rank in range(size)]
            assert [i for s in shards for i in s] == list(range(count))


def test_world_from_torchrun_environment(monkeypatch):
    from bench.errors import BenchError

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert World.from_env() == World(rank=3, size=4, local_rank=1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(BenchError, match="not a rank"):
        World.from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(BenchError, match="integers"):
        World.from_env()


def test_sharded_sampler_slices_the_global_batch():
    from bench.data import BatchSampler

    images = torch.randint(0, 256, (10, 3, 40, 40), dtype=torch.uint8)
    whole = BatchSampler(images, size=32, batch_size=4, seed=3, device="cpu")
    parts = [BatchSampler(images, size=32, batch_size=2, seed=3, device="cpu", shard=(rank, 2)) for rank in (0, 1)]
    for _ in range(3):
        batch = whole.next()
        halves = [part.next() for part in parts]
        torch.testing.assert_close(torch.cat([h.L for h in halves]), batch.L, rtol=0, atol=0)
        torch.testing.assert_close(torch.cat([h.ab for h in halves]), batch.ab, rtol=0, atol=0)
