"""Run identity: nothing overwritten, re-runs detected, diverged runs failed, bad input refused before training."""

import json
import math
import os
import sqlite3

import pytest
import torch

from bench import registry
from bench.api import Method
from bench.store.identity import RunIdentity, budget_key
from tests.helpers import find_runs

TINY = ("--dataset", "sample", "--size", "32", "--device", "cpu", "--metrics", "psnr", "--seeds", "1")


class GoesNaN(Method):
    """A plugin whose loss turns NaN at its 3rd step of a 6-step budget (and whose weights with it)."""

    name = "goes-nan"

    def __init__(self, options, context):
        super().__init__(options, context)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.nets = {"w": torch.nn.ParameterList([self.weight])}
        self.optimizers = {"w": torch.optim.SGD([self.weight], lr=0.1)}

    def train_step(self, batch):  # self.progress = steps done / 6: the 3rd step sees 2/6
        loss = (self.weight - 1).pow(2).sum() * (math.nan if self.progress >= 2 / 6 else 1.0)
        self.optimizers["w"].zero_grad()
        loss.backward()
        self.optimizers["w"].step()
        return {"L_fit": loss.detach()}

    def colorize(self, L):
        return torch.zeros(L.shape[0], 2, *L.shape[2:]) + self.weight


def identity(**changes):
    base = dict(dataset="sample", dataset_options={}, size=32, budget=budget_key("steps", 3), method="baseline",
                method_options={"lr": 1e-3}, precision="fp32", hardware="CPU x1", seed=0)
    return RunIdentity(**(base | changes))


def test_identity_folders_differ_in_every_field_and_share_only_across_seeds(tmp_path):
    base = identity()
    variants = [identity(dataset="flowers"), identity(dataset_options={"x": 1}), identity(size=64),
                identity(budget=budget_key("time", 600)), identity(method="pix2pix"),
                identity(method_options={"lr": 2e-3}), identity(precision="bf16"), identity(hardware="GPU x2")]
    folders = {base.folder(tmp_path)} | {v.folder(tmp_path) for v in variants}
    assert len(folders) == 1 + len(variants)
    other_seed = identity(seed=1)
    assert other_seed.config_hash == base.config_hash and other_seed.run_key != base.run_key
    assert other_seed.folder(tmp_path).parent == base.folder(tmp_path).parent
    # The budget counts by amount, not spelling; option values by value, not text.
    assert identity(budget=budget_key("time", 600.0)).run_key == identity(budget=budget_key("time", 600)).run_key
    assert identity(method_options={"lr": 0.001}).run_key == base.run_key
    with pytest.raises(ValueError, match="finite"):
        identity(method_options={"lr": math.inf})


def test_runs_differing_in_budget_or_option_both_survive(run_cli, tmp_path):
    out = tmp_path / "runs"
    for extra in (("--budget", "2steps"), ("--budget", "3steps"), ("--budget", "3steps", "-o", "lr=0.002")):
        code, _, err = run_cli("run", "--methods", "baseline", *TINY, *extra, "--out", out)
        assert code == 0, err
    folders = find_runs(out, "sample", "baseline", 0)
    assert len(folders) == 3
    results = [json.loads((f / "result.json").read_text()) for f in folders]
    assert sorted(r["budget"]["steps"] for r in results) == [2, 3, 3]
    assert sorted(json.dumps(r["changed_options"]) for r in results) == ['{"lr": 0.002}', "{}", "{}"]
    db = sqlite3.connect(out / "runs.sqlite")
    assert db.execute("SELECT COUNT(*) FROM runs WHERE kind = 'method'").fetchone()[0] == 3


def test_identical_rerun_is_detected_and_force_replaces(run_cli, tmp_path):
    out = tmp_path / "runs"
    argv = ("run", "--methods", "baseline", *TINY, "--budget", "2steps", "--out", out, "--json")
    assert run_cli(*argv)[0] == 0
    (result_path,) = [f / "result.json" for f in find_runs(out, "sample", "baseline")]
    before = result_path.read_bytes()
    code, stdout, err = run_cli(*argv)
    assert code == 0 and json.loads(stdout)[0]["action"] == "skipped (already done)"
    assert result_path.read_bytes() == before  # untouched, byte for byte
    code, stdout, err = run_cli(*argv, "--force")
    assert code == 0 and json.loads(stdout)[0]["action"] == "started"
    assert json.loads(result_path.read_text())["created"] and len(find_runs(out, "sample", "baseline")) == 1


def test_diverged_run_fails_and_others_are_intact(run_cli, tmp_path, extra_methods):
    extra_methods(GoesNaN)
    out = tmp_path / "runs"
    code, stdout, _ = run_cli("run", "--methods", "goes-nan,baseline", *TINY, "--budget", "6steps", "--out", out,
                              "--json")
    assert code == 3  # a run diverged
    printed = {r["method"]: r for r in json.loads(stdout)}
    assert printed["goes-nan"]["status"] == "failed"
    assert printed["goes-nan"]["error"] == "diverged: non-finite L_fit at step 3"
    assert printed["goes-nan"]["metrics"] == {} and printed["baseline"]["status"] == "ok"
    db = sqlite3.connect(out / "runs.sqlite")
    assert db.execute("SELECT COUNT(*) FROM metrics WHERE path LIKE '%goes-nan%'").fetchone()[0] == 0


def test_losses_are_fetched_in_windows_not_every_step(monkeypatch):
    from bench.engine import training
    from bench.engine.budget import Budget
    from bench.method import Batch, MethodContext, MethodOptions

    calls = []
    monkeypatch.setattr(training, "synchronize", lambda device: calls.append(1))

    class Quick(Method):
        name = "quick"

        def train_step(self, batch):
            return {"loss": torch.tensor(1.0)}

    class Sampler:
        def next(self):
            return Batch(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4))

    record = training.train(Quick(MethodOptions(), MethodContext(size=4)), Sampler(), Budget.parse("200steps"))
    assert record.steps == 200 and len(record.log) == 200
    assert len(calls) <= 200 // training.FLUSH_STEPS + 2


@pytest.mark.parametrize(
    "args, message",
    [
        (("--eval-batch-size", "0"), "--eval-batch-size 0"),
        (("--samples", "-1"), "--samples -1"),
        (("-o", "lr=inf"), "must be a finite number"),
        (("-o", "lr=nan"), "must be a finite number"),
        (("--methods", "pix2pix-resnet18-scratch", "--size", "48"), "multiple of 32"),
    ],
)
def test_bad_settings_fail_before_training(run_cli, tmp_path, args, message):
    argv = ["run", "--methods", "baseline", "--dataset", "sample", "--size", "32", "--budget", "1steps",
            "--device", "cpu", "--out", tmp_path / "out"]
    code, _, err = run_cli(*argv, *args)
    assert code == 2 and message in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out" / "sample").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_fails_before_training(run_cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    code, _, err = run_cli("run", "--methods", "baseline", *TINY, "--budget", "1steps", "--out", locked / "runs")
    assert code == 2 and "not writable" in err


def test_out_that_is_a_file_fails_before_training(run_cli, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("run", "--methods", "baseline", *TINY, "--budget", "1steps", "--out", tmp_path / "file")
    assert code == 2 and "is a file" in err
    code, _, err = run_cli("run", "--methods", "baseline", *TINY, "--budget", "1steps", "--out", tmp_path / "file" / "x")
    assert code == 2 and "not writable" in err and err.strip().count("\n") == 0


def test_demo_runs_are_flagged(run_cli, tmp_path):
    out = tmp_path / "runs"
    code, stdout, err = run_cli("run", "--methods", "baseline", *TINY, "--budget", "smoke", "-o", "batch_size=1",
                                "--out", out, "--json")
    assert code == 0
    assert "smoke preset" in json.loads(stdout)[0]["demo"]
    code, stdout, _ = run_cli("run", "--methods", "baseline", *TINY, "--budget", "3steps", "--out", out, "--json")
    assert json.loads(stdout)[0]["demo"].startswith("under-trained: 0.29 epochs")  # 48 of 168 images: what it got
    code, stdout, _ = run_cli("run", "--methods", "baseline", *TINY, "--budget", "1epochs", "-o", "width=8", "--out", out,
                              "--json")
    assert json.loads(stdout)[0]["demo"] is None  # a whole epoch of a compute budget, even on a CPU


def test_probe_measures_without_changing_training():
    from bench.data import BatchSampler
    from bench.engine.budget import Budget
    from bench.engine.probe import probe
    from bench.engine.training import train

    images = torch.randint(0, 256, (6, 3, 36, 36), dtype=torch.uint8)

    def trained(with_probe: bool):
        torch.manual_seed(0)
        method = registry.create_method("pix2pix", size=32, batch_size=2)
        sampler = BatchSampler(images, size=32, batch_size=2, seed=0, device="cpu")
        probed = probe(method, sampler) if with_probe else {}
        train(method, sampler, Budget.parse("3steps"))
        return method.G.state_dict(), probed

    plain, _ = trained(False)
    probed_state, probed = trained(True)
    assert probed["flops_per_step"] > 1e8 and probed["data_s_per_batch"] > 0
    assert all(torch.equal(plain[k], probed_state[k]) for k in plain)


def test_compile_is_applied_by_the_harness_and_not_charged(run_cli, tmp_path, monkeypatch):
    compiled = []
    original = torch.nn.Module.compile

    def eager_compile(self, **kwargs):  # the harness's path, with dynamo's eager backend (seconds, not minutes)
        compiled.append(kwargs.get("mode"))
        original(self, backend="eager")

    monkeypatch.setattr(torch.nn.Module, "compile", eager_compile)
    code, stdout, err = run_cli("run", "--methods", "baseline", *TINY, "--budget", "2steps", "--compile", "default",
                                "--out", tmp_path, "--json")
    assert code == 0, err
    timings = json.loads(stdout)[0]["timings"]
    assert compiled == ["default"] and timings["compile"] == "default" and timings["compile_s"] > 0
    assert timings["train_s"] < timings["compile_s"] + timings["train_s"]  # recorded apart from the budget
    code, _, err = run_cli("run", "--methods", "baseline", *TINY, "--budget", "2steps", "--compile", "fastest",
                           "--out", tmp_path / "x")
    assert code == 2 and "--compile 'fastest'" in err
