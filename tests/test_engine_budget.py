import time

import pytest
import torch

from bench.engine.budget import PRESETS, Budget
from bench.errors import BenchError
from bench.method import Batch, Method, MethodContext, MethodOptions, linear_decay
from bench.engine.training import train


@pytest.mark.parametrize(
    "text, kind, value",
    [("90s", "time", 90), ("10m", "time", 600), ("1.5h", "time", 5400), ("500steps", "steps", 500),
     ("1step", "steps", 1), (" 2 min ", "time", 120), ("smoke", "steps", 30), ("SHORT", "time", 300),
     ("5minutes", "time", 300), ("1hr", "time", 3600), ("90sec", "time", 90), ("20epochs", "epochs", 20),
     ("0.5epoch", "epochs", 0.5), ("200kimages", "images", 200_000), ("200000images", "images", 200_000),
     ("5PFLOP", "flops", 5e15), ("2TFLOP", "flops", 2e12), ("1EFLOPs", "flops", 1e18), ("2ksteps", "steps", 2000)],
)
def test_parse(text, kind, value):
    budget = Budget.parse(text)
    assert (budget.kind, budget.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "90", "fast", "-5s", "0steps", "1.5steps", "10 parsecs", "1.5images",
                                  "99999999999999999999steps", "5kPFLOP", "3kmin"])
def test_bad_budgets_get_one_line_errors(text):
    with pytest.raises(BenchError, match="budget") as info:
        Budget.parse(text)
    assert "\n" not in str(info.value)


def test_compute_budgets_become_the_same_whole_number_of_steps_everywhere():
    """One epoch of 168 training images: 11 steps at batch 16 (176 images), 84 steps of an unpaired batch of
    1 + 1 colour images; FLOPs by the probe's count per step, rounded up."""
    epoch = Budget.parse("1epochs")
    assert epoch.is_compute and not Budget.parse("10m").is_compute and not Budget.parse("5steps").is_compute
    assert epoch.resolve(images_per_step=16, flops_per_step=1e9, train_images=168) == Budget("steps", 11, "1epochs")
    assert epoch.resolve(images_per_step=2, flops_per_step=1e9, train_images=168).value == 84
    assert Budget.parse("1kimages").resolve(images_per_step=16, flops_per_step=None, train_images=9).value == 63
    assert Budget.parse("1TFLOP").resolve(images_per_step=1, flops_per_step=3e11, train_images=9).value == 4
    assert Budget.parse("1GFLOP").resolve(images_per_step=1, flops_per_step=3e11, train_images=9).value == 1  # at least 1
    assert Budget.parse("10m").resolve(images_per_step=1, flops_per_step=1, train_images=1) == Budget.parse("10m")
    with pytest.raises(BenchError, match="counted no FLOPs"):
        Budget.parse("1TFLOP").resolve(images_per_step=1, flops_per_step=0, train_images=9)


def test_demo_follows_what_was_trained():
    assert Budget.parse("smoke").demo_reason("cuda").startswith("smoke preset")
    assert "CPU run of a time budget" in Budget.parse("2h").demo_reason("cpu")
    assert Budget.parse("2h").demo_reason("cuda", epochs=40) is None
    assert Budget.parse("5steps").demo_reason("cuda", epochs=0.25) == \
        "under-trained: 0.25 epochs of the training split (less than one pass)"
    assert Budget.parse("20epochs").demo_reason("cpu", epochs=20.1) is None  # a CPU is fine for a compute budget


def test_presets_are_all_valid():
    for name in PRESETS:
        Budget.parse(name)


def test_linear_decay_schedule():
    assert linear_decay(0.0, 0.5) == 1.0 and linear_decay(0.5, 0.5) == 1.0
    assert linear_decay(0.75, 0.5) == pytest.approx(0.5)
    assert linear_decay(1.0, 0.5) == 0.0
    assert linear_decay(0.9, 1.0) == 1.0  # decay_start=1: constant


class SleepyMethod(Method):
    """Steps of a known duration, so the budget clock can be checked."""

    name = "sleepy"

    def __init__(self, options, context, seconds=0.01):
        super().__init__(options, context)
        self.seconds = seconds
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.optimizers = {"w": torch.optim.SGD([self.weight], lr=1.0)}
        self.lrs = []

    def train_step(self, batch):
        time.sleep(self.seconds)
        self.lrs.append(self.optimizers["w"].param_groups[0]["lr"])
        return {"loss": torch.tensor(1.0)}


class FixedSampler:
    def next(self):
        return Batch(torch.zeros(2, 1, 4, 4), torch.zeros(2, 2, 4, 4))


def test_time_budget_lands_within_one_percent_or_one_step():
    method = SleepyMethod(MethodOptions(lr=1.0), MethodContext(size=4))
    budget = Budget.parse("1s")
    record = train(method, FixedSampler(), budget)
    longest = max(b[1] - a[1] for a, b in zip([(0, 0.0, {})] + record.log, record.log))
    assert abs(record.seconds - budget.value) <= max(0.01 * budget.value, longest)
    assert record.steps >= 20


def test_step_budget_is_exact_and_schedule_follows_progress():
    method = SleepyMethod(MethodOptions(lr=1.0, decay_start=0.5), MethodContext(size=4), seconds=0)
    record = train(method, FixedSampler(), Budget.parse("10steps"))
    assert record.steps == 10 and record.images == 20
    # progress = steps done / 10: constant for the first half, then linear decay.
    assert method.lrs == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    history = record.history()
    assert history["step"] == list(range(1, 11)) and history["losses"]["loss"] == [1.0] * 10


def test_history_is_binned():
    method = SleepyMethod(MethodOptions(), MethodContext(size=4), seconds=0)
    record = train(method, FixedSampler(), Budget.parse("50steps"))
    history = record.history(points=7)
    assert len(history["step"]) <= 7 and history["step"][-1] == 50


class TwoRanksOneProcess:
    """A world of two ranks whose other rank mirrors this one: exercises the agreed clock in one process."""

    rank, size, local_rank, distributed, is_main = 0, 2, 0, True, True

    def all_reduce(self, tensor, op="sum"):
        return tensor * 2 if op == "sum" else tensor  # the other rank holds the same values


def test_time_budget_on_several_ranks_counts_gpu_seconds():
    method = SleepyMethod(MethodOptions(lr=1.0), MethodContext(size=4))
    budget = Budget.parse("2s")  # GPU-seconds: one second of wall time on each of two ranks
    start = time.perf_counter()
    record = train(method, FixedSampler(), budget, world=TwoRanksOneProcess())
    wall = time.perf_counter() - start
    longest = 2 * max(b[1] - a[1] for a, b in zip([(0, 0.0, {})] + record.log, record.log))
    assert abs(record.seconds - budget.value) <= max(0.01 * budget.value, longest)
    assert wall == pytest.approx(record.seconds / 2, rel=0.1)
    assert record.images == 4 * record.steps  # the global batch: two ranks x 2 images
    assert all(losses["loss"] == 1.0 for _, _, losses in record.log)  # the mean over ranks


class TrainsInInit(Method):
    """A cheat: trains its network in __init__, outside the budget."""

    name = "trains-in-init"

    def __init__(self, options, context):
        super().__init__(options, context)
        self.net = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.nets, self.optimizers = {"G": self.net}, {"G": torch.optim.Adam(self.net.parameters(), 1e-3)}
        images = torch.rand(16, 1, context.size, context.size)
        for _ in range(45):
            loss = self.net(images).square().mean()
            self.optimizers["G"].zero_grad()
            loss.backward()
            self.optimizers["G"].step()

    def train_step(self, batch):
        loss = torch.nn.functional.mse_loss(self.net(batch.L), batch.ab)
        self.optimizers["G"].zero_grad()
        loss.backward()
        self.optimizers["G"].step()
        return {"L2": loss.detach()}

    def colorize(self, L):
        return torch.tanh(self.net(L))


def test_training_in_init_is_refused_and_compute_budgets_record_every_measure(run_cli, tmp_path, extra_methods):
    import json

    extra_methods(TrainsInInit)
    code, out, _ = run_cli("run", "--methods", "trains-in-init,baseline", "--dataset", "sample", "--size", "16",
                           "--budget", "1epochs", "--device", "cpu", "--metrics", "psnr", "--seeds", "1", "-o",
                           "baseline.width=8", "--out", tmp_path, "--json")
    cheat, baseline = json.loads(out)
    assert cheat["status"] == "failed" and "FLOPs in __init__" in cheat["error"] and "training outside the budget" in \
        cheat["error"]
    assert baseline["status"] == "ok" and baseline["timings"]["init_flops"] == 0
    budget = baseline["budget"]
    train_images = baseline["data"]["train_images"]
    assert budget["planned_steps"] == budget["steps"] == -(-train_images // 16)  # whole steps reaching 1 epoch
    assert budget["images"] == 16 * budget["steps"] and budget["epochs"] == pytest.approx(budget["images"] / train_images)
    assert budget["flops"] == baseline["timings"]["flops_per_step"] * budget["steps"] and budget["seconds"] > 0
    assert baseline["identity"]["hardware"] == "any hardware"  # a compute budget: not keyed on the device
    assert baseline["hardware"]["class"].startswith("CPU") and baseline["demo"] is None  # one epoch: not a demo
    assert baseline["timings"]["test_flops_per_image"] > 0 and baseline["timings"]["batch_size"] == 16


def test_time_budgets_refuse_runs_sharing_a_device(run_cli, tmp_path):
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--budget", "30s", "--device",
                           "cpu", "--jobs", "2", "--seeds", "2", "--out", tmp_path)
    assert code == 2 and "time budget (30s) with runs sharing a device" in err and "\n" not in err.strip()


def test_an_interrupted_run_says_how_far_it_got():
    from bench.engine.training import Interrupted

    method = SleepyMethod(MethodOptions(), MethodContext(size=4), seconds=0.0)
    calls = []
    with pytest.raises(Interrupted) as stop:
        train(method, FixedSampler(), Budget.parse("100steps"), should_stop=lambda: calls.append(1) or len(calls) > 7)
    assert stop.value.record.steps == 7 and stop.value.record.images == 14 and "step 7" in str(stop.value)
