"""Summary statistics shared by the evaluation engine, the CLI and the reports (numpy only, no torch)."""

from __future__ import annotations

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
