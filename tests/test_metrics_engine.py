"""The evaluation engine: uncertainty, seed aggregation, one pass, failures isolated."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.stats import aggregate_seeds, bootstrap_ci
from bench.metric import Metric, MetricContext
from bench.metrics.fidelity import PSNR
from bench.tf32 import restore_tf32, save_tf32, set_tf32, tf32_enabled

CPU = torch.device("cpu")


def test_bootstrap_ci_brackets_the_mean_and_is_deterministic():
    values = np.random.default_rng(0).normal(3.0, 1.0, size=200)
    ci = bootstrap_ci(values)
    assert ci[0] < values.mean() < ci[1]
    assert ci == bootstrap_ci(values)  # fixed seed: same values, same interval
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)  # the normal approximation
    assert (ci[1] - ci[0]) / 2 == pytest.approx(half_width, rel=0.15)
    assert bootstrap_ci([1.0]) is None


def test_bootstrap_ci_of_a_statistic_of_the_mean():
    values = np.random.default_rng(1).normal(-2.0, 1.0, size=100)
    low, high = bootstrap_ci(values, statistic=np.abs)
    assert 0 < low < abs(values.mean()) < high
    assert [low, high] == pytest.approx(sorted(-v for v in bootstrap_ci(values)))


def test_aggregate_seeds():
    summary = aggregate_seeds([0.5, 0.7, 0.6])
    assert summary == {"mean": pytest.approx(0.6), "std": pytest.approx(0.1), "n": 3}
    assert aggregate_seeds([0.5, None]) == {"mean": 0.5, "std": None, "n": 1}
    assert aggregate_seeds([None]) == {"mean": None, "std": None, "n": 0}


class Recorder(Metric):
    """Checks what the engine promises metrics: [0, 1] floats, full precision, every batch once."""

    name = "recorder"

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.seen = 0

    def update(self, pred, target):
        assert pred.dtype == torch.float32 and 0 <= pred.min() and pred.max() <= 1
        assert not torch.is_autocast_enabled("cpu")
        self.seen += pred.shape[0]
        return pred.mean(dim=(1, 2, 3))


class Broken(Metric):
    name = "broken"

    def update(self, pred, target):
        raise RuntimeError("boom")


def test_engine_runs_all_metrics_in_one_pass_and_isolates_failures(monkeypatch):
    from bench import registry

    monkeypatch.setitem(registry.metrics()._entries, "recorder", registry.Entry("metric", "recorder", Recorder, "test"))
    context = MetricContext(device=CPU, shared={"stale": 1})
    metrics, unavailable = build_metrics(["psnr", "recorder"], context)
    assert "stale" not in context.shared and not unavailable  # scratch is per pass
    metrics.append(Broken(context))
    g = torch.Generator().manual_seed(0)
    image = lambda: torch.randint(0, 256, (4, 3, 16, 16), generator=g, dtype=torch.uint8)  # noqa: E731
    batches = [(image(), image()) for _ in range(3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a caller with AMP on: metrics still get float32
        results = evaluate(batches, metrics, total=12)
    assert metrics[1].seen == 12
    recorder = results["recorder"]
    assert recorder["status"] == "ok" and recorder["n"] == 12 and len(recorder["per_image"]) == 12
    assert recorder["value"] == pytest.approx(np.mean(recorder["per_image"]))
    assert recorder["ci95"][0] <= recorder["value"] <= recorder["ci95"][1]
    assert results["broken"]["status"] == "failed" and "boom" in results["broken"]["reason"]
    assert results["psnr"]["status"] == "ok" and results["psnr"]["settings"] == "psnr-rgb-range1"
    assert recorder["eval_images_per_s"] > 0


class Sleeper(Metric):
    """Takes a known time per batch, and records the precision flags it ran under."""

    name = "sleeper"

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.flags = []

    def update(self, pred, target):
        time.sleep(0.05)
        self.flags.append(tf32_enabled())
        return pred.mean(dim=(1, 2, 3))


@pytest.fixture
def tf32_on():
    """TF32 on for one test, through whichever switches this torch has; the settings restored after."""
    saved = save_tf32()
    set_tf32(True)
    yield
    restore_tf32(saved)


def test_each_metric_reports_its_own_time_and_the_pass_total(tf32_on):
    context = MetricContext(device=CPU)
    sleeper = Sleeper(context)
    metrics = [PSNR(context), sleeper]
    producer_flags = []

    def batches():  # like the runner's generator: it colorizes between batches, with its own precision
        g = torch.Generator().manual_seed(1)
        for _ in range(3):
            producer_flags.append(tf32_enabled())
            time.sleep(0.05)
            yield tuple(torch.randint(0, 256, (2, 3, 16, 16), generator=g, dtype=torch.uint8) for _ in "pt")

    results = evaluate(batches(), metrics, total=6)
    assert sleeper.flags == [(False, False)] * 3  # metrics run with TF32 off ...
    assert producer_flags == [(True, True)] * 3  # ... the batch producer keeps the caller's setting
    assert tf32_enabled() == (True, True)  # restored
    slept, psnr = results["sleeper"], results["psnr"]
    assert 0.15 <= slept["eval_s"] < psnr["eval_s"] + slept["eval_s"] <= slept["pass_s"]
    assert psnr["eval_s"] < 0.05  # its own time only, not the pass's
    assert slept["pass_s"] >= 0.3 and psnr["pass_s"] == slept["pass_s"]  # producing the batches counts for the pass
    assert slept["eval_images_per_s"] == pytest.approx(6 / slept["eval_s"])
    assert psnr["pass_images_per_s"] == pytest.approx(6 / psnr["pass_s"])


def test_per_image_values_must_be_one_per_image():
    class Scalar(Metric):
        name = "scalar"

        def update(self, pred, target):
            return pred.mean()  # a set mean instead of (N,) values

    context = MetricContext(device=CPU)
    image = torch.zeros(3, 3, 16, 16, dtype=torch.uint8)
    results = evaluate([(image, image)], [Scalar(context), PSNR(context)], total=3)
    assert results["scalar"]["status"] == "failed" and "one value per image" in results["scalar"]["reason"]
    assert results["psnr"]["status"] == "ok"


def test_no_host_transfer_per_batch(monkeypatch, shared_weights_dir):
    """Everything the metrics fetch from the device is fetched after the pass: the number of fetches
    does not grow with the number of batches (the CPU stands in for the device here)."""
    from bench.weights import WeightStore

    fetches = []
    for method in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, method)
        monkeypatch.setattr(torch.Tensor, method, lambda self, *a, _m=method, _f=original, **k: fetches.append(_m) or _f(self, *a, **k))
    context = MetricContext(device=CPU, weights=WeightStore(shared_weights_dir))
    names = ["psnr", "ssim", "lpips", "colourfulness", "delta_colourfulness", "fd-alex", "kd-alex"]
    counts = []
    for n_batches in (2, 5):
        metrics, unavailable = build_metrics(names, context)
        assert not unavailable
        g = torch.Generator().manual_seed(n_batches)
        batches = [tuple(torch.randint(0, 256, (3, 3, 32, 32), generator=g, dtype=torch.uint8) for _ in "pt")
                   for _ in range(n_batches)]
        fetches.clear()
        results = evaluate(batches, metrics, total=3 * n_batches)
        assert all(r["status"] == "ok" for r in results.values()), results
        counts.append(sorted(fetches))
    assert counts[0] == counts[1]
