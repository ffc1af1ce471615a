"""Synthetic runs folders, to try the report without training anything (and to test it).

``example_runs(folder)`` writes result.json files, in the layout ``bench run`` uses, covering
every case a leaderboard must show: several methods and seeds, a failed and a skipped method, a
metric unavailable on this machine and a set-level metric with a small-N warning. The numbers are
made up (seeded) and say so in the dataset description: never publish them as results.

    python -m bench.reports.example runs-demo && bench report --runs runs-demo --out site-demo
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from bench import store

TEST_IMAGES = 12
SAMPLE_COUNT = 3


def _png(path: Path, rgb: tuple[int, int, int], size: int = 16) -> None:
    ramp = np.linspace(0.4, 1.0, size)[None, :, None]
    pixels = (np.array(rgb, dtype=np.float64)[None, None, :] * ramp).repeat(size, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def write_result(runs: Path, method: str, seed: int = 0, *, dataset: str = "demo", status: str = "ok",
                 metrics: dict | None = None, error: str | None = None, size: int = 32,
                 budget: tuple = ("steps", 20, "20steps"), losses: tuple[str, ...] = ("L1",),
                 sample_names: list[str] | None = None, **extra) -> Path:
    """One result.json (plus sample PNGs for ok runs); ``metrics`` maps a name to a mean value, or to
    a full metric_details entry (a dict) for unavailable/failed/set-level metrics."""
    rng = np.random.default_rng(zlib.crc32(f"{dataset}/{method}/{seed}".encode()))
    directory = store.run_dir(runs, dataset, method, seed)
    names = [f"img-{i:02d}" for i in range(TEST_IMAGES)]
    kind, value, label = budget
    result = {
        "schema": store.SCHEMA, "method": method, "method_plugin": "example",
        "method_description": f"synthetic method {method}", "dataset": dataset, "size": size, "seed": seed,
        "status": status, "error": error,
        "budget": {"kind": kind, "value": value, "label": label, "used": value if status == "ok" else 0,
                   "steps": 20 if status == "ok" else 0},
        "metrics": {}, "metric_details": {}, "timings": {},
        "environment": {"colorbench": "0.1.0", "git_commit": "0123456789abcdef0123456789abcdef01234567",
                        "python": "3.11.7", "torch": "2.5.0", "cuda": None, "cudnn": None,
                        "device": "CPU: example", "cpu_threads": 2},
        "config": {"method": method, "method_options": {"lr": 0.001}, "dataset": dataset, "size": size,
                   "seed": seed, "budget": label, "device": "cpu"},
        "data": {"info": {"name": dataset, "description": "synthetic example data, not a benchmark result",
                          "split": "first 24 train / last 12 test", "source": "bench.reports.example"},
                 "train_images": 24, "test_images": TEST_IMAGES, "dropped": {"train": {}, "test": {}}},
        "created": f"2025-01-0{1 + seed % 9}T12:00:00+00:00",
    }
    if status == "ok":
        per_image = {"names": names}
        for name, spec in (metrics or {"psnr": 20.0}).items():
            if isinstance(spec, dict):
                detail = {"higher_is_better": True, "description": f"{name} (example)", **spec}
            else:
                values = spec + rng.normal(0.0, abs(spec) * 0.05 + 0.01, TEST_IMAGES)
                per_image[name] = [float(v) for v in values]
                detail = {"status": "ok", "value": float(values.mean()),
                          "ci95": [float(values.mean() - values.std()), float(values.mean() + values.std())],
                          "n": TEST_IMAGES, "settings": f"{name}-example", "description": f"{name} (example)",
                          "higher_is_better": not name.startswith(("lpips", "fid", "kid"))}
            result["metric_details"][name] = detail
            result["metrics"][name] = detail.get("value")
        result["per_image"] = per_image
        steps = list(range(1, 21))
        result["history"] = {"step": steps, "time": [round(0.1 * s, 4) for s in steps],
                             "losses": {loss: [float(v) for v in np.exp(-np.array(steps) / 8) + rng.uniform(0, 0.05, 20)]
                                        for loss in losses}}
        result["timings"] = {"train_s": 2.0 + seed, "steps": 20, "train_images_per_s": 160.0 / (2.0 + seed),
                             "infer_s": 0.1, "eval_s": 0.2, "infer_images_per_s": 120.0, "eval_images_per_s": 60.0}
        result["parameters"] = {"G": 1000 + len(method)}
        result["samples"] = []
        for k, name in enumerate(sample_names or names[:SAMPLE_COUNT]):
            stem = f"{k:02d}-{store.safe_name(name)}"
            files = {part: f"samples/{stem}.{part}.png" for part in ("gray", "pred", "truth")}
            shade = 40 + 60 * k
            _png(directory / files["gray"], (shade, shade, shade))
            _png(directory / files["truth"], (shade, 200 - shade, 90))
            _png(directory / files["pred"], tuple(int(c) for c in rng.integers(0, 256, 3)))
            result["samples"].append({"name": name, "index": k, **files})
    result.update(extra)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / store.RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return directory


def example_runs(runs: Path) -> Path:
    """A runs folder with three scored methods (two seeds each), one failed and one skipped."""
    fid = {"status": "ok", "value": 61.5, "n": TEST_IMAGES, "higher_is_better": False, "std": 1.5,
           "warning": f"N={TEST_IMAGES} < 2048: FID is biased upwards at this size; compare only equal N"}
    lpips = {"status": "unavailable", "value": None, "higher_is_better": False,
             "reason": "LPIPS weights not found: put alexnet-features-lpips.pth in --weights-dir"}
    for seed in (0, 1):
        for method, psnr, ssim in (("baseline", 21.0, 0.80), ("pix2pix", 22.5, 0.78), ("cyclegan", 19.0, 0.70)):
            write_result(runs, method, seed, metrics={"psnr": psnr + 0.2 * seed, "ssim": ssim, "lpips": lpips,
                                                      "fid": dict(fid, value=fid["value"] + len(method) + seed)},
                         losses=("G_GAN", "G_L1", "D") if method != "baseline" else ("L2",))
    write_result(runs, "broken", 0, status="failed", error="RuntimeError: CUDA out of memory (example)",
                 traceback="Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory (example)")
    write_result(runs, "pix2pix_resnet18", 0, status="skipped",
                 error="ImageNet ResNet18 weights not found: put resnet18.pth in --weights-dir")
    return runs


if __name__ == "__main__":
    print(example_runs(Path(sys.argv[1] if len(sys.argv) > 1 else "runs-demo")))
