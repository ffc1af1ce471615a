"""Shared machinery of the side-by-side benchmarks: settings, timing, batch search, results, summary.

Settings come from the environment (each one-line-checked), with defaults per device:

============================== ============================ ==========================
variable                       CUDA                         CPU (checks the code path)
============================== ============================ ==========================
COLORBENCH_BENCH_SIZE          256                          32
COLORBENCH_BENCH_STEPS         enough for ~2 s per round    1
COLORBENCH_BENCH_ROUNDS        3 (+1 warm-up round)         1 (+1 warm-up round)
COLORBENCH_BENCH_MAX_BATCH     256                          2
COLORBENCH_BENCH_EVAL_IMAGES   10000                        32
COLORBENCH_BENCH_EVAL_BATCH    250                          32
============================== ============================ ==========================

``COLORBENCH_BENCH_CPU=1`` runs the CPU variants on a machine with CUDA too (skipped there otherwise).
Every measured row lands in ``RESULTS``; ``conftest.py`` prints them as one table at the end.
"""

from __future__ import annotations

import gc
import math
import os
import time
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from bench.engine.probe import peak_flops
from bench.engine.training import synchronize
from bench.errors import BenchError

HAS_CUDA = torch.cuda.is_available()
RUN_CPU = os.environ.get("COLORBENCH_BENCH_CPU", "") not in ("", "0")
ROUND_SECONDS = 2.0  # CUDA: steps per round are chosen so one round lasts about this long...
SEARCH_SECONDS = 0.5  # ...and a measurement of the batch search about this long
FILL_GAIN = 1.05  # keep doubling the batch while images/s rises by more than 5 %
MEMORY_HEADROOM = 0.45  # stop doubling once a step used this share of the device memory

DEVICES = [
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")),
    pytest.param("cpu", id="cpu", marks=pytest.mark.skipif(
        HAS_CUDA and not RUN_CPU, reason="CUDA present: the CPU variant only checks the code path "
                                         "(COLORBENCH_BENCH_CPU=1 runs it)")),
]

# Every measured figure, one dict per row; printed by conftest.pytest_terminal_summary.
RESULTS: list[dict] = []


def env_int(name: str, default: int | None, minimum: int = 1) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BenchError(f"{name}={text!r}: expected a whole number") from None
    if value < minimum:
        raise BenchError(f"{name}={value}: must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    device: torch.device
    size: int
    steps: int | None  # None: chosen per measurement for ~ROUND_SECONDS per round
    warmup_steps: int  # before any timing: cuDNN autotuning, allocator growth
    rounds: int
    max_batch: int
    eval_images: int
    eval_batch: int

    @classmethod
    def for_device(cls, device: str) -> "Settings":
        cuda = device == "cuda"
        return cls(
            device=torch.device(device),
            size=env_int("COLORBENCH_BENCH_SIZE", 256 if cuda else 32, minimum=32),
            steps=env_int("COLORBENCH_BENCH_STEPS", None if cuda else 1),
            warmup_steps=2 if cuda else 1,
            rounds=env_int("COLORBENCH_BENCH_ROUNDS", 3 if cuda else 1),
            max_batch=env_int("COLORBENCH_BENCH_MAX_BATCH", 256 if cuda else 2),
            eval_images=env_int("COLORBENCH_BENCH_EVAL_IMAGES", 10000 if cuda else 32, minimum=4),
            eval_batch=env_int("COLORBENCH_BENCH_EVAL_BATCH", 250 if cuda else 32),
        )


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and ("out of memory" in text or "CUDNN_STATUS_ALLOC_FAILED" in text))


# -- synthetic images ----------------------------------------------------------------------------
def synthetic_images(n: int, size: int, seed: int, *, noise: float = 6.0) -> torch.Tensor:
    """uint8 (n, 3, size, size): smooth colour fields (bicubic from 6x6) plus sensor-like noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g) * 255
    smooth = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return (smooth + torch.randn(n, 3, size, size, generator=g) * noise).clamp(0, 255).round().to(torch.uint8)


# -- timing ----------------------------------------------------------------------------------------
def timed(run, steps: int, device: torch.device) -> float:
    """Seconds for ``run(steps)``, synchronised before and after (never per step)."""
    synchronize(device)
    start = time.perf_counter()
    run(steps)
    synchronize(device)
    return time.perf_counter() - start


def steps_per_round(run, settings: Settings, seconds: float = ROUND_SECONDS) -> int:
    """The fixed COLORBENCH_BENCH_STEPS, else enough steps (3..200) for about ``seconds``."""
    if settings.steps is not None:
        return settings.steps
    one = timed(run, 2, settings.device) / 2
    return max(3, min(200, math.ceil(seconds / max(one, 1e-6))))


def throughput(make_side, batch: int, settings: Settings) -> tuple[float, float] | None:
    """(images/s, peak memory share) of a freshly built side at ``batch``; None when it does not fit."""
    side = None
    try:
        side = make_side(batch)
        side.run(settings.warmup_steps)
        if settings.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(settings.device)
        steps = steps_per_round(side.run, settings, SEARCH_SECONDS)
        seconds = timed(side.run, steps, settings.device)
        memory = 0.0
        if settings.device.type == "cuda":
            total = torch.cuda.get_device_properties(settings.device).total_memory
            memory = torch.cuda.max_memory_reserved(settings.device) / total
        return batch * steps / seconds, memory
    except RuntimeError as error:
        if not is_out_of_memory(error):
            raise
        return None
    finally:
        del side
        free_memory(settings.device)


_FILL: dict[tuple, tuple[int, dict]] = {}


def fill_batch(key: tuple, make_side, settings: Settings) -> tuple[int, dict]:
    """The batch that fills the device: doubled from 1 while images/s rises by more than 5 % and the
    memory allows (out-of-memory is caught), up to ``max_batch``; the best measured one is returned
    with every tried batch's images/s (None: out of memory). Found once per ``key``."""
    if key in _FILL:
        return _FILL[key]
    tried: dict[int, float | None] = {}
    batch, previous = 1, None
    while batch <= settings.max_batch:
        measured = throughput(make_side, batch, settings)
        tried[batch] = measured[0] if measured else None
        if measured is None:
            break
        if previous is not None and measured[0] <= FILL_GAIN * tried[previous]:
            break
        if measured[1] > MEMORY_HEADROOM:  # twice the batch would not fit
            break
        previous, batch = batch, batch * 2
    measured_ok = {b: v for b, v in tried.items() if v is not None}
    if not measured_ok:
        raise BenchError(f"{key}: even batch 1 does not fit on {device_name(settings.device)}")
    best = max(measured_ok, key=measured_ok.get)
    _FILL[key] = best, tried
    return _FILL[key]


def utilisation(flops_per_step: float | None, steps: int, seconds: float, device: torch.device,
                precision: str) -> dict:
    """Achieved TFLOP/s and the share of the device's peak at ``precision`` (None where unknown)."""
    if not flops_per_step:
        return {"tflops": None, "peak_tflops": None, "peak_share": None}
    achieved = flops_per_step * steps / seconds
    peak = peak_flops(device_name(device), precision) if device.type == "cuda" else None
    return {"tflops": achieved / 1e12, "peak_tflops": peak / 1e12 if peak else None,
            "peak_share": achieved / peak if peak else None}


def find_result(**match) -> dict | None:
    for row in RESULTS:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


# -- the summary -------------------------------------------------------------------------------
def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def summary_lines() -> list[str]:
    lines = []
    train = [r for r in RESULTS if r["section"] == "train"]
    if train:
        lines.append("training step, side by side (images/s over N synchronised steps, median of rounds)")
        header = (f"{'device':<8} {'method':<16} {'side':<11} {'batch':>5} {'precision':<10} {'images/s':>10} "
                  f"{'x ref@1':>8} {'TFLOP/s':>8} {'% peak':>7} {'data %':>7}")
        lines += [header, "-" * len(header)]
        for r in train:
            lines.append(
                f"{r['device']:<8} {r['method']:<16} {r['side']:<11} {r['batch']:>5} {r['precision']:<10} "
                f"{r['images_per_s']:>10.1f} {_fmt(r.get('ratio_vs_reference_b1'), '>8.2f')} "
                f"{_fmt(r.get('tflops'), '>8.1f')} {_fmt(r.get('peak_share'), '>7.1f', 100)} "
                f"{_fmt(r.get('data_share'), '>7.2f', 100)}")
        lines.append("x ref@1: images/s over the reference step's at batch 1 (same method, same device). "
                     "% peak: of the device's dense peak at that precision (reference: cuDNN's default "
                     "TF32 convolutions can exceed the fp32 peak).")
    evals = [r for r in RESULTS if r["section"] == "eval"]
    if evals:
        lines.append("")
        lines.append("evaluation of the same image folders")
        header = f"{'device':<8} {'what':<52} {'images':>7} {'seconds':>9} {'images/s':>10} {'x ref':>7}"
        lines += [header, "-" * len(header)]
        for r in evals:
            lines.append(f"{r['device']:<8} {r['what']:<52} {r['images']:>7} {r['seconds']:>9.2f} "
                         f"{r['images_per_s']:>10.1f} {_fmt(r.get('ratio_vs_reference'), '>7.2f')}")
        lines.append("x ref: seconds of the reference (pytorch-fid CLI + lpips loop: the parts that ran, for "
                     "metrics this row computed too) over this row's seconds.")
    lines += target_lines()
    return lines


def target_lines() -> list[str]:
    """The issue's targets, stated for one H100, where their rows were measured on CUDA."""
    checks = []
    fill = find_result(section="train", device="cuda", method="pix2pix", side="colorbench", batch_kind="fill")
    if fill:
        checks.append((f"pix2pix at a device-filling batch ({fill['batch']}), {fill['precision']}: "
                       f"{fill['images_per_s']:.0f} images/s", ">= 3000 images/s", fill["images_per_s"] >= 3000))
    one = find_result(section="train", device="cuda", method="pix2pix", side="colorbench", batch_kind="1")
    if one and one.get("ratio_vs_reference_b1") is not None:
        checks.append((f"pix2pix at batch 1: {one['ratio_vs_reference_b1']:.2f}x the reference step",
                       ">= 5x", one["ratio_vs_reference_b1"] >= 5))
    for row in (fill, one):
        if row and row.get("data_share") is not None:
            checks.append((f"data pipeline at batch {row['batch']}: {100 * row['data_share']:.2f} % of the step",
                           "<= 2 %", row["data_share"] <= 0.02))
    score = find_result(section="eval", device="cuda", side="colorbench", what_kind="score_folders")
    if score and score.get("ratio_vs_reference") is not None:
        checks.append((f"evaluation of {score['images']} images: {score['ratio_vs_reference']:.2f}x "
                       f"({score['reference_parts']})", ">= 5x", score["ratio_vs_reference"] >= 5))
    if not checks:
        return []
    lines = ["", f"targets (stated for one H100; measured on {find_result(device='cuda')['device_name']})"]
    lines += [f"  [{'met' if ok else 'MISSED'}] {what} (target {target})" for what, target, ok in checks]
    return lines
