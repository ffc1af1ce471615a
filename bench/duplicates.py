"""Test images that duplicate training images, found on the decoded uint8 tensors.

Runs for every dataset, where both splits are loaded (``bench.engine.context.prepare``), on the images exactly
as the suite prepares them: each test image (the centre ``size`` crop of the image stored at
``size + size // 8``) is compared with the same centre crop of every training image. Both are reduced by
area averaging to ``THUMBNAIL_SIDE`` x ``THUMBNAIL_SIDE`` RGB and each thumbnail's mean (over pixels and
channels: its brightness) is removed -- colour differences stay. The distance is the RMS difference of
the two thumbnails over their RMS contrast (floored at ``CONTRAST_FLOOR`` levels, so nearly flat images
are not matched on noise): 0 for a copy or a brightness change of it, about 1.4 for two unrelated images.
A test image whose nearest training image is within ``DUPLICATE_THRESHOLD`` (0.3) is a duplicate; a
mirrored or different photo is not.

On the Oxford-17 flowers, at 32, 48, 64, 128 and 256 px alike, 16 test images duplicate training
images: the audit's 15 (13 copies, 2 near-copies) at 0.000-0.075 from their training copies, and
image_1022 at 0.19 (the same photo as image_0997, shifted a little); every other test image is at 0.45
or more (median 0.93), so 0.3 sits about 1.5x from both sides. Re-crops that move a photo further
(705/676 and 703/673 look like such) sit among unrelated images at 0.45: this pixel-aligned check does
not claim to catch them. ``sample``'s nearest pair is at 0.43.

A dataset opts into dropping them with a ``drop_duplicates`` option (``flowers``: true by default);
otherwise they are kept and the log warns with the count. Either way ``dataset.info()`` (and so every
result) records the check, and when images are dropped the test set's fingerprint changes with them,
so cached reference statistics are keyed on the images actually scored.

Pairs are screened in float32 with a margin, then confirmed in float64 from the thumbnails, so the
result does not depend on chunking or thread count; it is cached (``COLORBENCH_CACHE/duplicates/``)
by both splits' fingerprints, so a large dataset (CIFAR-10: 10,000 x 50,000 pairs) pays once.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
import torch.nn.functional as F

from bench.data import ImageSet, cache_dir, centre_crop
from bench.errors import BenchError
from bench.store.atomic import atomic_write_text

THUMBNAIL_SIDE = 16
# A contrast below this (RMS about the mean, 0-255) counts as this: near-uniform images are compared
# on the absolute scale, so two nearly flat but different images are not duplicates by noise alone.
CONTRAST_FLOOR = 10.0
# The normalised distance (below) at or under which a test image duplicates a training image.
DUPLICATE_THRESHOLD = 0.3
# Bump when thumbnails, distance or threshold change, so cached results are not reused.
CHECK_VERSION = 2
DROP_REASON = "duplicate"  # the key in ImageSet.dropped
RECORDED_PAIRS = 1000  # at most this many pairs are listed in info(); the count is always whole
METHOD = (f"each test image against the same centre crop of every training image, both area-averaged to "
          f"{THUMBNAIL_SIDE}x{THUMBNAIL_SIDE} RGB less their mean brightness; distance = RMS difference / RMS "
          f"contrast of the two (at least {CONTRAST_FLOOR:g} on 0-255); <= {DUPLICATE_THRESHOLD:g} is a duplicate")
_CHUNK = 512  # test thumbnails compared at once (x every training thumbnail)
_PIXELS_AT_ONCE = 1 << 24  # 64 MB of float32
_PAIRS_AT_ONCE = 1 << 15  # candidate pairs confirmed at once


def thumbnails(images: torch.Tensor, crop: int, side: int = THUMBNAIL_SIDE) -> torch.Tensor:
    """(N, 3 * s * s) float32: the centre ``crop`` of uint8 (N, 3, H, W) images, area-averaged to s x s
    (s = min(side, crop)), less each thumbnail's mean, on the 0-1 scale."""
    side = min(side, crop)
    out = torch.empty(images.shape[0], 3 * side * side, dtype=torch.float32)
    step = max(1, _PIXELS_AT_ONCE // (3 * crop * crop))  # by chunks: bounded memory
    for start in range(0, images.shape[0], step):
        # Window sums of uint8 values are exact in float32 for crops up to 4096 px: the pooled means do not
        # depend on the summation order, so neither does anything below.
        chunk = centre_crop(images[start : start + step], crop).float()
        small = F.adaptive_avg_pool2d(chunk, side).flatten(1).double()
        out[start : start + step] = ((small - small.mean(1, keepdim=True)) / 255).float()
    return out


def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The normalised distance between thumbnails, row by row (float64): RMS(a - b) over the RMS
    contrast of the two, sqrt((|a|^2 + |b|^2) / 2), floored at CONTRAST_FLOOR. 0: the same thumbnail
    (or one brighter or darker throughout); about 1.4 (sqrt 2): two unrelated images of equal contrast."""
    a, b = a.double(), b.double()
    contrast = ((a.pow(2).mean(1) + b.pow(2).mean(1)) / 2).sqrt().clamp(min=CONTRAST_FLOOR / 255)
    return (a - b).pow(2).mean(1).sqrt() / contrast


def nearest_within(test: torch.Tensor, train: torch.Tensor, threshold: float) -> list[tuple[int, int, float]]:
    """(test index, train index, distance) for each test thumbnail whose nearest training thumbnail is
    within ``threshold`` (``distance``); ties go to the lower train index.

    Pairs are screened in float32 (a matrix product, with a margin far above its rounding), then the
    candidates are confirmed in float64 by ``distance``: the result does not depend on chunking or threads.
    """
    floor = (CONTRAST_FLOOR / 255) ** 2 * test.shape[1]
    train_sq = (train * train).sum(1).unsqueeze(0)
    train_t = train.T.contiguous()
    pairs = []
    for start in range(0, test.shape[0], _CHUNK):
        rows = test[start : start + _CHUNK]
        rows_sq = (rows * rows).sum(1, keepdim=True)
        d2 = torch.addmm(train_sq, rows, train_t, alpha=-2) + rows_sq  # |a - b|^2
        contrast2 = ((rows_sq + train_sq) / 2).clamp(min=floor)  # dims x contrast^2
        # float32 rounding of d2 stays far below 1e-4 of the norms; what passes is confirmed exactly
        candidates = (d2 <= threshold**2 * contrast2 + 1e-4 * (rows_sq + train_sq) + 1e-6).nonzero()
        for part in candidates.split(_PAIRS_AT_ONCE):
            i, j = part[:, 0] + start, part[:, 1]
            exact = distance(test[i], train[j])
            pairs += [(t, r, d) for t, r, d in zip(i.tolist(), j.tolist(), exact.tolist()) if d <= threshold]
    best: dict[int, tuple[int, int, float]] = {}
    for t, r, d in sorted(pairs, key=lambda p: (p[0], p[2], p[1])):
        best.setdefault(t, (t, r, d))
    return [best[t] for t in sorted(best)]


def find_duplicates(train: torch.Tensor, test: torch.Tensor, threshold: float = DUPLICATE_THRESHOLD,
                    side: int = THUMBNAIL_SIDE) -> list[tuple[int, int, float]]:
    """(test index, nearest train index, distance) of the test images that duplicate a training image.

    ``train`` and ``test`` are uint8 (N, 3, H, W) as the pipeline stores them; training images may be
    stored larger (``size + size // 8``): their centre crop at the test images' side is compared.
    """
    crop = test.shape[-1]
    if test.shape[-2] != crop or min(train.shape[-2:]) < crop:
        raise BenchError(f"duplicate check: test images {tuple(test.shape[-2:])} must be square and no larger "
                         f"than the training images {tuple(train.shape[-2:])}")
    return nearest_within(thumbnails(test, crop, side), thumbnails(train, crop, side), threshold)


def _cached_pairs(train_set: ImageSet, test_set: ImageSet, log) -> list[tuple[int, int, float]]:
    """``find_duplicates`` of the two sets, cached by both fingerprints (when both have one)."""
    if not (train_set.fingerprint and test_set.fingerprint):
        return find_duplicates(train_set.images, test_set.images)
    key = {"version": CHECK_VERSION, "side": THUMBNAIL_SIDE, "threshold": DUPLICATE_THRESHOLD,
           "floor": CONTRAST_FLOOR, "train": train_set.fingerprint, "test": test_set.fingerprint,
           "sizes": [len(train_set), len(test_set)]}
    path = cache_dir() / "duplicates" / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]}.json"
    try:
        stored = json.loads(path.read_text())
        if stored["key"] == key:
            return [(int(t), int(r), float(d)) for t, r, d in stored["pairs"]]
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: found afresh
        pass
    pairs = find_duplicates(train_set.images, test_set.images)
    try:
        atomic_write_text(path, json.dumps({"key": key, "pairs": pairs}))
    except OSError as error:  # a cache that cannot be written only costs time next run
        if log:
            log(f"cannot cache the duplicate check in {path.parent} ({error.strerror or error})")
    return pairs


def check_duplicates(dataset, train_set: ImageSet, test_set: ImageSet, *, log=None) -> ImageSet:
    """Find test images that duplicate training images; record the check in ``dataset.duplicate_check``
    (part of ``dataset.info()``); drop them when the dataset has ``drop_duplicates`` set, else warn.

    Returns the test set to use: the same object when nothing is dropped, else a new ImageSet without
    the duplicates, their count under ``dropped["duplicate"]`` and a fingerprint that names them.
    """
    pairs = _cached_pairs(train_set, test_set, log)
    drop = bool(getattr(dataset.options, "drop_duplicates", False))
    label = f"{dataset.name}/test"
    dropped_names = [test_set.names[t] for t, _, _ in pairs] if drop else []
    dataset.duplicate_check = {
        "method": METHOD, "threshold": DUPLICATE_THRESHOLD, "thumbnail": THUMBNAIL_SIDE, "contrast_floor": CONTRAST_FLOOR,
        "found": len(pairs), "of": len(test_set), "dropped": len(dropped_names),
        "pairs": [{"test": test_set.names[t], "train": train_set.names[r], "distance": round(d, 3)}
                  for t, r, d in pairs[:RECORDED_PAIRS]],
    }
    if not pairs:
        return test_set
    example = f"e.g. {test_set.names[pairs[0][0]]} ~ {train_set.names[pairs[0][1]]}"
    if not drop:
        if log:
            log(f"warning: {label}: {len(pairs)} of {len(test_set)} test images duplicate training images "
                f"(distance <= {DUPLICATE_THRESHOLD:g}, {example}); "
                f"kept: {dataset.name} does not drop duplicates")
        return test_set
    if len(pairs) == len(test_set):
        raise BenchError(f"{label}: every test image duplicates a training image; nothing is left to score")
    keep = np.setdiff1d(np.arange(len(test_set)), [t for t, _, _ in pairs])
    digest = hashlib.sha256(json.dumps([test_set.fingerprint, DROP_REASON, dropped_names]).encode())
    result = ImageSet(test_set.images[torch.from_numpy(keep)].contiguous(), [test_set.names[i] for i in keep],
                      test_set.dropped | {DROP_REASON: len(pairs)}, digest.hexdigest()[:20])
    if log:
        log(f"{label}: dropped {len(pairs)} of {len(test_set)} test images that duplicate training images "
            f"(distance <= {DUPLICATE_THRESHOLD:g}, {example})")
    return result
