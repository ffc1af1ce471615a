"""``bench score``: score a folder of colorized images against ground truth (matching file names).

Lets users score outputs of tools outside the suite with exactly the suite's metrics, and ``bench colorize``'s
output folder directly against the photos it was given. Files are matched by :func:`match_key`: the name
without its image extension, and without a second one when it has two, so ``photo.jpg.png`` (``bench
colorize``'s output for ``photo.jpg``), ``photo.jpg`` and ``photo.png`` all match ``photo``. The rule is the
same on both sides, so it is symmetric, and within each folder every key must be unique: two files that
match one key (``photo.jpg`` and ``photo.png``, or ``photo.png`` and ``photo.jpg.png``) are a one-line error
naming both, never a silent pick.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench import registry
from bench.errors import BenchError
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.metric import MetricContext
from bench.progress import log
from bench.weights import WeightStore

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MATCHING = ("names are matched without their image extension, one or two: photo.jpg.png (bench colorize's output), "
            "photo.jpg and photo.png all match photo")


def match_key(name: str) -> str | None:
    """The name ``bench score`` matches a file by (see ``MATCHING``), or None when it is not an image.

    ``photo.jpg-2.png`` keeps its ``-2``: ``bench colorize`` numbers an output only when another input of the
    same name (from another folder, or differing in case) took ``photo.jpg.png`` first, so it is a
    colorization of some other photo called ``photo.jpg``; matching it to this target would score it against
    the wrong ground truth. It stays unmatched and is counted as such.
    """
    stem, suffix = os.path.splitext(name)
    if suffix.lower() not in IMAGE_SUFFIXES:
        return None
    inner, second = os.path.splitext(stem)
    return inner if second.lower() in IMAGE_SUFFIXES else stem


def image_files(folder: Path) -> dict[str, Path]:
    """Image files of a folder (not its sub-folders) keyed by :func:`match_key`; two files with one key are
    a one-line error naming both."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder} is not a folder")
    files = {}
    for path in sorted(folder.iterdir()):
        key = match_key(path.name)
        if key is None or not path.is_file():
            continue
        if key in files:
            raise BenchError(f"{folder}: {files[key].name} and {path.name} both match {key!r}; {MATCHING}; "
                             "move one of them to another folder")
        files[key] = path
    return files


def _examples(folder: Path, files: dict[str, Path], shown: int = 3) -> str:
    """E.g. ``photos (120 images, e.g. a.jpg, b.jpg, c.jpg, …)``."""
    if not files:
        return f"{folder} (no images)"
    names = sorted(path.name for path in files.values())
    more = ", …" if len(names) > shown else ""
    return f"{folder} ({len(names)} image{'s' * (len(names) != 1)}, e.g. {', '.join(names[:shown])}{more})"


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except Exception as error:
        raise BenchError(f"{path}: not a readable image ({error})") from None


def score_folders(pred_dir: Path, target_dir: Path, metric_names: list[str] | None = None, *,
                  device="cpu", weights_dir=None, batch_size: int = 32) -> dict:
    device = torch.device(device)
    preds, targets = image_files(pred_dir), image_files(target_dir)
    common = sorted(set(preds) & set(targets))
    if not common:
        raise BenchError(f"no file names in common between {_examples(pred_dir, preds)} and "
                         f"{_examples(target_dir, targets)}; {MATCHING}")
    unmatched = len(set(preds) ^ set(targets))
    if unmatched:
        log(f"score: {unmatched} images without a counterpart were ignored")
    pairs_by_shape = defaultdict(list)
    # PIL releases the GIL while decoding: threads keep the device fed with 10,000s of PNGs.
    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        decoded = pool.map(lambda name: (read_rgb(preds[name]), read_rgb(targets[name])), common)
        pairs = list(zip(common, decoded))
    for name, (pred, target) in pairs:
        if pred.shape != target.shape:
            raise BenchError(f"{name}: prediction is {pred.shape[1]}x{pred.shape[0]} but target is {target.shape[1]}x{target.shape[0]}")
        pairs_by_shape[pred.shape].append((name, pred, target))
    order = [name for group in pairs_by_shape.values() for name, _, _ in group]

    def batches():
        for group in pairs_by_shape.values():  # images of one size are batched together
            for i in range(0, len(group), batch_size):
                chunk = group[i : i + batch_size]
                to_tensor = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(device)  # noqa: E731
                yield to_tensor([p for _, p, _ in chunk]), to_tensor([t for _, _, t in chunk])

    names = metric_names or registry.list_metrics()
    context = MetricContext(device=device, weights=WeightStore(weights_dir))
    metrics, unavailable = build_metrics(names, context)
    details = unavailable | evaluate(batches(), metrics, len(order), label="score")
    details = {name: details[name] for name in names}
    per_image = {"names": order} | {name: d.pop("per_image") for name, d in details.items() if "per_image" in d}
    return {
        "pred": str(pred_dir),
        "target": str(target_dir),
        "n_images": len(order),
        "unmatched": unmatched,
        "metrics": {name: d.get("value") for name, d in details.items()},
        "metric_details": details,
        "per_image": per_image,
    }
