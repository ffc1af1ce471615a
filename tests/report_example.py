"""Synthetic runs folders, to try the report without training anything (and to test it).

``example_runs(folder)`` writes schema-2 result.json files, in the layout ``bench run`` uses,
covering every case a leaderboard must show: several methods and seeds, a method with changed
options, the gray-input and ground-truth reference rows (with the ground truth's infinite PSNR),
a diverged, an interrupted and a skipped run, a metric unavailable on this machine and a set-level
metric with a small-N warning. The numbers are made up (seeded): every run says so in its ``demo``
field, so the board carries the demo banner. Never publish them as results. ``full_runs(folder)`` writes
boards shaped like real ones (seven methods, every metric, the FID weights missing), for the layout tests.

    python -m tests.report_example runs-demo && bench report --runs runs-demo --out site-demo   # in a checkout
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from bench import store
from bench.store.identity import ReferenceIdentity, RunIdentity, budget_key, hardware_class

TEST_IMAGES = 12
SAMPLE_COUNT = 3
DEFAULT_OPTIONS = {"lr": 0.001}
HARDWARE = ("CPU: example", 1)
DEMO = "synthetic example data (made-up numbers)"
DIRECTIONS = {"lpips": False, "fid": False, "kid": False, "fd-alex": False, "kd-alex": False,
              "delta_colourfulness": False, "ab_hist_swd": False, "colourfulness": None}
INFINITE = "inf"  # a metric spec: +inf, as the runner writes the ground truth's PSNR


def run_dir(out: Path, dataset: str, method: str, seed: int) -> Path:
    """A plain folder for results that have no identity (examples, imports of old results)."""
    return Path(out) / store.safe_name(dataset) / store.safe_name(method) / f"seed{seed}"


def _png(path: Path, rgb: tuple[int, int, int], size: int = 16) -> None:
    ramp = np.linspace(0.4, 1.0, size)[None, :, None]
    pixels = (np.array(rgb, dtype=np.float64)[None, None, :] * ramp).repeat(size, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def image_names(count: int = TEST_IMAGES) -> list[str]:
    return [f"img-{i:02d}" for i in range(count)]


def _scores(metrics: dict, dataset: str, rng: np.random.Generator) -> tuple[dict, dict]:
    """(metric_details, per_image) from specs: a mean (per-image values = mean + a per-image difficulty
    shared by every method of the dataset + the run's own noise), a list (the per-image values; its
    length sets the number of test images), the string ``"inf"`` or a full metric_details entry (a
    dict: unavailable/failed/set-level metrics)."""
    count = next((len(spec) for spec in metrics.values() if isinstance(spec, (list, tuple))), TEST_IMAGES)
    details, per_image = {}, {"names": image_names(count)}
    for name, spec in metrics.items():
        higher = DIRECTIONS.get(name, True)
        header = {"higher_is_better": higher, "description": f"{name} (example)", "settings": f"{name}-example"}
        if isinstance(spec, dict):
            details[name] = {**header, **spec}
            continue
        if spec == INFINITE:
            details[name] = {**header, "status": "ok", "value": None, "infinite": True, "ci95": None, "n": count}
            per_image[name] = [None] * count
            continue
        if isinstance(spec, (list, tuple)):
            values = np.asarray(spec, dtype=np.float64)
        else:
            difficulty = np.random.default_rng(zlib.crc32(f"{dataset}/{name}".encode())).normal(0.0, 0.1, count)
            values = spec + abs(spec) * difficulty + rng.normal(0.0, abs(spec) * 0.03 + 0.002, count)
        per_image[name] = [float(v) for v in values]
        mean, spread = float(values.mean()), float(values.std())
        details[name] = {**header, "status": "ok", "value": mean, "ci95": [mean - spread, mean + spread],
                         "n": int(values.size)}
    return details, per_image


def _base(dataset: str, size: int, demo: str | None) -> dict:
    return {
        "schema": store.SCHEMA, "dataset": dataset, "size": size, "demo": demo, "metrics": {}, "metric_details": {},
        "environment": {"colorbench": "0.1.0", "git_commit": "0123456789abcdef0123456789abcdef01234567",
                        "python": "3.11.7", "torch": "2.5.0", "cuda": None, "cudnn": None,
                        "device": HARDWARE[0], "cpu_threads": 2},
        "data": {"info": {"name": dataset, "description": "synthetic example data, not a benchmark result",
                          "split": "first 24 train / last 12 test", "source": "tests.report_example"},
                 "train_images": 24, "test_images": TEST_IMAGES, "dropped": {"train": {}, "test": {}}},
    }


def _finish(directory: Path, result: dict, metrics: dict | None, rng: np.random.Generator, extra: dict) -> Path:
    if result["status"] == "ok":
        details, per_image = _scores(metrics or {"psnr": 20.0}, result["dataset"], rng)
        result["metric_details"], result["per_image"] = details, per_image
        result["metrics"] = {name: detail.get("value") for name, detail in details.items()}
    result.update(extra)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / store.RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return directory


def write_result(runs: Path, method: str, seed: int = 0, *, dataset: str = "demo", status: str = "ok",
                 metrics: dict | None = None, error: str | None = None, size: int = 32,
                 budget: tuple = ("steps", 20, "20steps"), losses: tuple[str, ...] = ("L1",),
                 sample_names: list[str] | None = None, options: dict | None = None,
                 hardware: tuple[str, int] = HARDWARE, precision: str = "fp32", demo: str | None = None,
                 schema: int = 2, **extra) -> Path:
    """One method run's result.json (plus sample PNGs for ok runs). ``metrics`` maps a name to a spec
    (see ``_scores``); ``options`` are the changed options; ``schema=1`` writes the old format (no
    identity, hardware, precision or kind); ``extra`` overrides any field."""
    rng = np.random.default_rng(zlib.crc32(f"{dataset}/{method}/{options}/{seed}".encode()))
    kind, value, label = budget
    options = dict(options or {})
    identity = RunIdentity(dataset, {}, size, budget_key(kind, value), method, DEFAULT_OPTIONS | options, precision,
                           hardware_class(*hardware), seed, changed_options=options)
    result = _base(dataset, size, demo) | {
        "kind": "method", "method": method, "method_plugin": "example 0.1",
        "method_description": f"synthetic method {method}", "seed": seed, "status": status, "error": error,
        "identity": identity.to_dict(), "run_key": identity.run_key, "config_hash": identity.config_hash,
        "changed_options": options, "precision": precision,
        "hardware": {"device": hardware[0], "count": hardware[1], "class": hardware_class(*hardware)},
        "budget": {"kind": kind, "value": value, "label": label, "used": value if status == "ok" else 0,
                   "steps": 20 if status == "ok" else 0},
        "timings": {},
        "config": {"method": method, "method_options": identity.method_options, "dataset": dataset, "size": size,
                   "seed": seed, "budget": label, "device": "cpu"},
        "created": f"2025-01-0{1 + seed % 9}T12:00:00+00:00",
    }
    result["environment"]["device"] = hardware[0]
    if schema == 1:
        for key in ("kind", "identity", "run_key", "config_hash", "changed_options", "precision", "hardware", "demo"):
            result.pop(key)
        result["schema"] = 1
        directory = run_dir(runs, dataset, method, seed)
    else:
        directory = identity.folder(runs)
    if status == "ok":
        steps = list(range(1, 21))
        result["history"] = {"step": steps, "time": [round(0.1 * s, 4) for s in steps],
                             "losses": {loss: [float(v) for v in np.exp(-np.array(steps) / 8) + rng.uniform(0, 0.05, 20)]
                                        for loss in losses}}
        result["timings"] = {"train_s": 2.0 + seed, "steps": 20, "train_images_per_s": 160.0 / (2.0 + seed),
                             "eval_s": 0.2, "eval_images_per_s": 60.0,
                             "achieved_tflops": 0.05, "data_share": 0.01}
        result["parameters"] = {"G": 1000 + len(method)}
        result["samples"] = []
        for k, name in enumerate(sample_names or image_names()[:SAMPLE_COUNT]):
            stem = f"{k:02d}-{store.safe_name(name)}"
            files = {part: f"samples/{stem}.{part}.png" for part in ("gray", "pred", "truth")}
            shade = 40 + 60 * k
            _png(directory / files["gray"], (shade, shade, shade))
            _png(directory / files["truth"], (shade, 200 - shade, 90))
            _png(directory / files["pred"], tuple(int(c) for c in rng.integers(0, 256, 3)))
            result["samples"].append({"name": name, "index": k, **files})
    return _finish(directory, result, metrics, rng, extra)


def write_reference(runs: Path, reference: str, *, dataset: str = "demo", size: int = 32, metrics: dict | None = None,
                    demo: str | None = None, **extra) -> Path:
    """A reference row's result.json: ``reference`` is "gray" (ab = 0) or "truth" (the ground truth)."""
    identity = ReferenceIdentity(dataset, {}, size, reference)
    result = _base(dataset, size, demo) | {
        "kind": "reference", "reference": reference, "method": {"gray": "gray input", "truth": "ground truth"}[reference],
        "method_plugin": "colorbench (built-in)", "seed": None, "status": "ok", "error": None,
        "identity": identity.to_dict(), "run_key": identity.run_key,
        "method_description": "the gray input itself (ab = 0): doing nothing" if reference == "gray"
        else "the ground truth scored against itself: the ceiling",
    }
    rng = np.random.default_rng(zlib.crc32(f"{dataset}/{reference}".encode()))
    return _finish(identity.folder(runs), result, metrics, rng, extra)


# Made-up means per method (psnr, ssim, lpips, colourfulness), shaped like the source reports' claims.
EXAMPLE_METHODS = {
    "baseline": (23.0, 0.86, 0.200, 18.0),
    "unet-l2": (23.4, 0.87, 0.185, 20.0),
    "pix2pix": (22.6, 0.84, 0.160, 30.0),
    "cyclegan-paired": (21.5, 0.80, 0.198, 27.0),
    "cyclegan-unpaired": (20.8, 0.78, 0.230, 34.0),
}


def example_runs(runs: Path) -> Path:
    """A runs folder with five scored methods (three seeds each), one with changed options, the two
    reference rows, and a diverged, an interrupted and a skipped run."""
    fid = {"status": "ok", "value": 61.5, "n": TEST_IMAGES, "std": 1.5,
           "warning": f"N={TEST_IMAGES} < 2048: FID is biased upwards at this size; compare only equal N"}
    kid = {"status": "unavailable", "value": None,
           "reason": "Inception weights not found: put pt_inception-2015-12-05-6726825d.pth in --weights-dir"}

    def scores(psnr, ssim, lpips, colour, shift=0.0):
        return {"psnr": psnr + shift, "ssim": ssim, "lpips": lpips, "colourfulness": colour,
                "fid": dict(fid, value=fid["value"] + 40 * lpips + shift), "kid": kid}

    for method, means in EXAMPLE_METHODS.items():
        for seed in (0, 1, 2):
            write_result(runs, method, seed, metrics=scores(*means, shift=0.2 * seed), demo=DEMO,
                         losses=("G_GAN", "G_L1", "D") if method.startswith(("pix2pix", "cyclegan")) else ("L2",))
    write_result(runs, "pix2pix", 0, options={"gan_mode": "lsgan"}, metrics=scores(22.4, 0.83, 0.165, 31.0),
                 demo=DEMO, losses=("G_GAN", "G_L1", "D"))
    write_reference(runs, "gray", demo=DEMO, metrics={"psnr": 21.0, "ssim": 0.82, "lpips": 0.26,
                                                      "colourfulness": [0.0] * TEST_IMAGES,  # gray: exactly 0
                                                      "fid": dict(fid, value=95.0), "kid": kid})
    write_reference(runs, "truth", demo=DEMO, metrics={"psnr": INFINITE, "ssim": [1.0] * TEST_IMAGES,
                                                       "lpips": [0.0] * TEST_IMAGES, "colourfulness": 32.0,
                                                       "fid": dict(fid, value=0.0), "kid": kid})
    write_result(runs, "pix2pix-resnet18-scratch", 0, status="failed", error="diverged: non-finite G_L1 at step 57",
                 demo=DEMO, traceback="Traceback (most recent call last):\n  ...\nFloatingPointError: non-finite G_L1")
    write_result(runs, "unet-l2", 3, status="interrupted", error="interrupted by the user (Ctrl-C) at step 12",
                 demo=DEMO)
    write_result(runs, "pix2pix-resnet18", 0, status="skipped", demo=DEMO,
                 error="ImageNet ResNet18 weights not found: put resnet18-f37072fd.pth in --weights-dir")
    return runs


# A board as a real run gives it (the metrics, weights messages and hardware of a flowers 64² board), for
# layout tests: psnr, ssim, lpips, delta_colourfulness, ab_hist_swd, fd-alex, kd-alex per method.
FULL_METHODS = {
    "baseline": (23.0, 0.86, 0.200, 9.0, 6.1, 21.0, 1.9),
    "unet-l2": (23.4, 0.87, 0.185, 8.1, 5.6, 18.0, 1.5),
    "pix2pix": (22.6, 0.84, 0.160, 4.2, 3.1, 6.5, -0.05),
    "cyclegan-paired": (21.5, 0.80, 0.198, 5.0, 3.9, 9.8, 0.4),
    "cyclegan-unpaired": (20.8, 0.78, 0.230, 6.3, 4.4, 12.0, 0.7),
    "pix2pix-resnet18-scratch": (22.1, 0.83, 0.170, 4.8, 3.5, 7.9, 0.2),
}
HUB = "/home/user/.cache/torch/hub/checkpoints"


def _missing(title: str, filename: str, url: str) -> str:
    """What ``bench.weights`` records for a file it cannot find offline."""
    return (f"{title} unavailable (put {filename} at {HUB} or in $COLORBENCH_WEIGHTS; from {url}; "
            f"downloads disabled by COLORBENCH_OFFLINE)")


FID_MISSING = _missing("FID Inception weights", "pt_inception-2015-12-05-6726825d.pth",
                       "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                       "pt_inception-2015-12-05-6726825d.pth")
RESNET_MISSING = _missing("ImageNet ResNet18 weights", "resnet18-f37072fd.pth",
                          "https://download.pytorch.org/models/resnet18-f37072fd.pth")
H100 = ("NVIDIA H100 80GB HBM3", 1)


def full_runs(runs: Path) -> Path:
    """Seven methods (three seeds; one diverged seed, one method skipped for missing weights) on a flowers 64²
    board with every metric (FID/KID unavailable: no Inception weights), the two references (the ground
    truth's fd-alex and kd-alex below 0, as real runs give them), and two smaller boards on other hardware."""
    unavailable = {"status": "unavailable", "value": None, "reason": FID_MISSING}
    common = {"dataset": "flowers", "size": 64, "budget": ("time", 900, "standard"), "demo": DEMO}

    def scores(psnr, ssim, lpips, dcf, swd, fd, kd, colour=25.0):
        return {"psnr": psnr, "ssim": ssim, "lpips": lpips, "fid": unavailable, "kid": unavailable,
                "fd-alex": {"status": "ok", "value": fd, "n": TEST_IMAGES},
                "kd-alex": {"status": "ok", "value": kd, "std": 0.05, "n": TEST_IMAGES},
                "colourfulness": colour, "delta_colourfulness": dcf, "ab_hist_swd": swd}

    for hardware, methods in ((H100, FULL_METHODS), (("NVIDIA L4", 1), ["baseline", "pix2pix"]),
                              (("NVIDIA RTX 4090", 1), ["baseline", "unet-l2"])):
        for method in methods:
            means = FULL_METHODS[method]
            for seed in (0, 1, 2):
                jitter = means[:5] + (means[5] * (1 + 0.05 * seed), means[6] + 0.02 * seed)
                failed = method.endswith("scratch") and seed == 2
                write_result(runs, method, seed, **common, hardware=hardware, metrics=scores(*jitter),
                             status="failed" if failed else "ok", error="diverged: non-finite G_L1 at step 57" if failed
                             else None, losses=("G_GAN", "G_L1", "D") if "pix" in method or "gan" in method else ("L2",))
    for seed in (0, 1, 2):
        write_result(runs, "pix2pix-resnet18", seed, **common, hardware=H100, status="skipped", error=RESNET_MISSING)
    write_reference(runs, "gray", dataset="flowers", size=64, demo=DEMO, metrics=dict(
        scores(21.0, 0.82, 0.26, 25.0, 12.7, 40.0, 4.5), colourfulness=[0.0] * TEST_IMAGES))
    write_reference(runs, "truth", dataset="flowers", size=64, demo=DEMO, metrics=dict(
        scores(INFINITE, [1.0] * TEST_IMAGES, [0.0] * TEST_IMAGES, [0.0] * TEST_IMAGES, [0.0] * TEST_IMAGES, -3.7e-05,
               -0.691), colourfulness=32.0))
    return runs


if __name__ == "__main__":
    print(example_runs(Path(sys.argv[1] if len(sys.argv) > 1 else "runs-demo")))
