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
     ("1step", "steps", 1), (" 2 min ", "time", 120), ("smoke", "steps", 30), ("SHORT", "time", 300)],
)
def test_parse(text, kind, value):
    budget = Budget.parse(text)
    assert (budget.kind, budget.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "90", "fast", "-5s", "0steps", "1.5steps", "10 parsecs"])
def test_bad_budgets_get_one_line_errors(text):
    with pytest.raises(BenchError, match="budget") as info:
        Budget.parse(text)
    assert "\n" not in str(info.value)


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
