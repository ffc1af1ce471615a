"""``bench score``: score a folder of colorized images against ground truth (matching file names).

Lets users score outputs of tools outside the suite with exactly the suite's metrics.
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
from bench.evaluate import build_metrics, evaluate
from bench.metric import MetricContext
from bench.progress import log
from bench.weights import WeightStore

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def image_files(folder: Path) -> dict[str, Path]:
    """Image files of a folder keyed by file stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder} is not a folder")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            if path.stem in files:
                raise BenchError(f"{folder}: two images named {path.stem!r} ({files[path.stem].name}, {path.name})")
            files[path.stem] = path
    return files


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
        raise BenchError(f"no file names in common between {pred_dir} and {target_dir}")
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
