"""Colorize the test split and score it: one pass on one device, or sharded over ranks; the samples.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from bench.color import (
    float_to_uint8,
    lab_to_rgb,
    normalized_lab_to_rgb,
    rgb_to_lab,
    rgb_to_normalized_lab,
    uint8_to_float,
)
from bench.data import ImageSet
from bench.engine.context import RunContext
from bench.engine.training import Diverged
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.evaluation.test_time import colorize_seeded
from bench.store.atomic import atomic_write
from bench.store.identity import safe_name


def gray_uint8(images: torch.Tensor) -> torch.Tensor:
    """The gray input a method sees (L with zero ab), as uint8 RGB."""
    lab = rgb_to_lab(uint8_to_float(images))
    lab[:, 1:] = 0
    return float_to_uint8(lab_to_rgb(lab))


def sample_indices(count: int, total: int) -> list[int]:
    """Evenly spread test images: the same ones for every method of a dataset."""
    count = min(count, total)
    return [round(i * (total - 1) / max(1, count - 1)) for i in range(count)] if count > 1 else [0][:count]


def _colorized(method, images: torch.Tensor, batch_size: int, device, keep: dict, bad: list, seconds: list,
               *, seed: int, offset: int = 0, draw: int = 0):
    """(prediction, target) uint8 batches on the device, colorized as they are scored (one pass).

    ``images`` are the test split's from index ``offset`` on; a method random at test time draws each
    image's randomness from (``seed``, its index in the split, ``draw``).

    Predictions at the ``keep`` indices are kept for the samples; ``bad[0]`` becomes a device flag
    of non-finite outputs, read once after the pass (no per-batch synchronisation).
    """
    method.eval_mode()
    for first in range(0, images.shape[0], batch_size):
        target = images[first : first + batch_size].to(device, non_blocking=True)
        start = time.perf_counter()
        with torch.no_grad():
            L, _ = rgb_to_normalized_lab(uint8_to_float(target))
            ab = colorize_seeded(method, L, run_seed=seed, first_index=offset + first, draw=draw)
            finite = torch.isfinite(ab).all()
            bad[0] = ~finite if bad[0] is None else bad[0] | ~finite
            pred = float_to_uint8(normalized_lab_to_rgb(L, torch.nan_to_num(ab)))
        seconds[0] += time.perf_counter() - start
        for position in keep:
            if first <= position < first + target.shape[0]:
                keep[position] = pred[position - first]
        yield pred, target


def _colorized_shards(method, context: RunContext, keep: dict, bad: list, seconds: list, *, seed: int,
                      draw: int = 0):
    """Several ranks: each colorizes its share of the test split, then rank 0 gets them all.

    Yields rank 0's (prediction, target) batches; the other ranks yield nothing.
    """
    world, images = context.world, context.test_set.images
    shard = world.shard(images.shape[0])
    parts = [pred for pred, _ in _colorized(method, images[shard.start : shard.stop], context.eval_batch_size,
                                            context.device, {}, bad, seconds, seed=seed, offset=shard.start,
                                            draw=draw)]
    local = torch.cat(parts) if parts else images.new_zeros((0, *images.shape[1:])).to(context.device)
    flag = (bad[0] if bad[0] is not None else torch.zeros((), dtype=torch.bool, device=context.device))
    bad[0] = world.all_reduce(flag.to(torch.int32), "max").bool()
    predictions = world.gather(local, images.shape[0])
    if not world.is_main:
        return
    for position in keep:
        keep[position] = predictions[position]
    for first in range(0, images.shape[0], context.eval_batch_size):
        target = images[first : first + context.eval_batch_size].to(context.device, non_blocking=True)
        yield predictions[first : first + target.shape[0]], target


def _scored_pass(method, context: RunContext, label: str, *, seed: int, draw: int, keep: dict, bad: list,
                 seconds: list) -> tuple[dict | None, float]:
    """One colorize-and-score pass over the test split (test-time draw ``draw``): the metrics' entries on
    rank 0 (None on the other ranks) and the pass's seconds, building the metrics not included."""
    test_set = context.test_set
    metrics, unavailable = build_metrics(context.metric_names, context.metric_context)
    start = time.perf_counter()
    if context.world.distributed:
        batches = _colorized_shards(method, context, keep, bad, seconds, seed=seed, draw=draw)
    else:
        batches = _colorized(method, test_set.images, context.eval_batch_size, context.device, keep, bad, seconds,
                             seed=seed, draw=draw)
    if not context.world.is_main:
        for _ in batches:  # colorizes this rank's share; rank 0 scores
            pass
        return None, time.perf_counter() - start
    details = unavailable | evaluate(batches, metrics, len(test_set), label=label)
    return details, time.perf_counter() - start


def score_method(method, context: RunContext, result: dict, folder: Path, label: str, *, seed: int) -> None:
    """Colorize the test split and score it in one pass (several ranks: colorize sharded, then score);
    fill the result; write the samples (rank 0). ``seed``: the run's, for test-time randomness.

    A method random at test time is scored on draw 0; with ``context.test_draws`` > 1 the further draws
    are scored too, and the result's ``test_time`` holds every draw's value of each metric and their spread.
    """
    test_set = context.test_set
    keep = dict.fromkeys(sample_indices(context.samples, len(test_set)))
    bad, colorize_s = [None], [0.0]
    details, eval_s = _scored_pass(method, context, f"score {label}", seed=seed, draw=0, keep=keep, bad=bad,
                                   seconds=colorize_s)
    draws = context.test_draws if method.random_at_test_time else 1
    extra = [_scored_pass(method, context, f"score {label} draw {d + 1}/{draws}", seed=seed, draw=d, keep={}, bad=bad,
                          seconds=[0.0])[0] for d in range(1, draws)]
    if bad[0] is not None and bool(bad[0]):
        raise Diverged("diverged: non-finite output when colorizing the test split")
    if not context.world.is_main:
        return
    result["test_time"] = _test_time(method.random_at_test_time, [details] + extra)
    fill_scores(result, details, context, eval_s)
    result["timings"].update(colorize_host_s=colorize_s[0], test_s_per_image=colorize_s[0] / len(test_set),
                             test_flops_per_image=_colorize_flops(method, test_set.images[:1].to(context.device), seed))
    result["samples"] = save_samples(folder, keep, test_set)


def _test_time(random: bool, passes: list[dict]) -> dict:
    """What the result says of test-time randomness: whether the method has any, how many draws were scored
    and, with several, each metric's value per draw and their standard deviation (``spread``)."""
    out = {"random": random, "draws": len(passes)}
    if len(passes) > 1:
        values = {name: [p[name].get("value") for p in passes] for name in passes[0]}
        values = {name: v for name, v in values.items() if all(isinstance(x, float) and math.isfinite(x) for x in v)}
        out["values"] = values
        out["spread"] = {name: statistics.stdev(v) for name, v in values.items()}
    return out


def _colorize_flops(method, image: torch.Tensor, seed: int) -> int:
    """FLOPs of colorizing one test image (FlopCounterMode): the test-time cost the board shows."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        L, _ = rgb_to_normalized_lab(uint8_to_float(image))
        colorize_seeded(method, L, run_seed=seed, first_index=0)
    return int(counter.get_total_flops())


def fill_scores(result: dict, details: dict, context: RunContext, eval_s: float) -> None:
    details = {name: details[name] for name in context.metric_names}
    result["timings"].update(eval_s=eval_s, eval_images_per_s=len(context.test_set) / eval_s if eval_s else None)
    result["per_image"] = {"names": context.test_set.names} | {
        name: d.pop("per_image") for name, d in details.items() if "per_image" in d
    }
    for detail in details.values():  # e.g. PSNR of identical images: +inf, which JSON cannot hold
        if isinstance(detail.get("value"), float) and detail["value"] == float("inf"):
            detail["infinite"] = True
    result["metric_details"] = details
    result["metrics"] = {name: d.get("value") for name, d in details.items()}


def save_samples(folder: Path, kept: dict, test_set: ImageSet) -> list[dict]:
    """A few test images as PNGs: the gray input, this method's output, the ground truth."""
    directory = folder / "samples"
    directory.mkdir(parents=True, exist_ok=True)
    samples = []
    for k, (position, pred) in enumerate(sorted(kept.items())):
        truth = test_set.images[position : position + 1]
        stem = f"{k:02d}-{safe_name(test_set.names[position])}"
        files = {"gray": f"{stem}.gray.png", "pred": f"{stem}.pred.png", "truth": f"{stem}.truth.png"}
        for key, image in (("gray", gray_uint8(truth)[0]), ("pred", pred), ("truth", truth[0])):
            png = Image.fromarray(image.permute(1, 2, 0).cpu().numpy())
            atomic_write(directory / files[key], lambda tmp, png=png: png.save(tmp, format="PNG"))
        samples.append({"name": test_set.names[position], "index": position} | {k2: f"samples/{v}" for k2, v in files.items()})
    return samples
