"""Summary statistics shared by the evaluation engine, the CLI and the reports (numpy only, no torch)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BOOTSTRAP_RESAMPLES = 1000


def bootstrap_ci(values, *, statistic=None, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """95 % percentile-bootstrap interval of the mean, or of ``statistic(mean)`` (e.g. ``np.abs``).

    Fixed seed: the same values give the same interval.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or not np.isfinite(values).all():  # e.g. PSNR of identical images is inf
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    if statistic is not None:
        means = statistic(means)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def aggregate_seeds(values) -> dict:
    """Across-seed summary of one metric: mean, sample std (ddof 1; None for one seed), count.

    ``None`` entries (a seed where the metric was unavailable or failed) are left out.
    """
    kept = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if kept.size == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(kept.std(ddof=1)) if kept.size > 1 else None
    return {"mean": float(kept.mean()), "std": std, "n": int(kept.size)}


@lru_cache(maxsize=4)
def _image_counts(n: int, resamples: int, seed: int) -> tuple[np.ndarray, dict]:
    """How often each of ``n`` images is drawn in each resample, (resamples, n), and the generator's
    state after those draws. Every pair of one board shares them (same images, same seed), so they
    are drawn once. With counts, each seed's resampled image mean is one matrix product."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n, size=(resamples, n))
    counts = np.bincount((images + n * np.arange(resamples)[:, None]).ravel(), minlength=resamples * n)
    counts = counts.reshape(resamples, n).astype(np.float64)
    counts.flags.writeable = False
    return counts, rng.bit_generator.state


def paired_bootstrap(a, b, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict | None:
    """The mean difference ``a - b`` with a 95 % paired-bootstrap interval, over test images and seeds.

    ``a`` and ``b`` hold per-image values on the *same* test images, in the same order: shape
    (images,) for one seed or (seeds, images) for several (the two may have different seed counts).
    Each resample draws the image indices once, shared by both sides (paired: an image that is hard
    for one method is hard for the other), then, per side, seeds with replacement; a side's value is
    the mean over its drawn seeds and drawn images. Draw order (the test repeats it in a plain loop):
    images (resamples, n), then a's seeds (resamples, seeds_a), then b's (resamples, seeds_b).

    Returns {"difference", "ci95": [lo, hi], "n_images", "n_seeds": [seeds_a, seeds_b]}, or None when
    the values cannot be compared (fewer than two images, non-finite values, other image counts).
    Fixed seed: the same values give the same interval.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] < 2 or not a.size or not b.size:
        return None
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    n = a.shape[1]
    counts, state = _image_counts(n, resamples, seed)
    rng = np.random.default_rng(seed)
    rng.bit_generator.state = state  # where the image draws left it
    seeds_a = rng.integers(0, a.shape[0], size=(resamples, a.shape[0]))
    seeds_b = rng.integers(0, b.shape[0], size=(resamples, b.shape[0]))
    per_seed_a, per_seed_b = counts @ a.T / n, counts @ b.T / n
    differences = (np.take_along_axis(per_seed_a, seeds_a, axis=1).mean(axis=1)
                   - np.take_along_axis(per_seed_b, seeds_b, axis=1).mean(axis=1))
    return {
        "difference": float(a.mean() - b.mean()),
        "ci95": [float(np.percentile(differences, 2.5)), float(np.percentile(differences, 97.5))],
        "n_images": int(n),
        "n_seeds": [int(a.shape[0]), int(b.shape[0])],
    }


def interval_sign(ci95) -> int:
    """+1 when a 95 % interval lies above 0, -1 below, 0 when it contains 0 (not distinguishable)."""
    lo, hi = ci95
    return 1 if lo > 0 else -1 if hi < 0 else 0
