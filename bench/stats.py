"""Summary statistics shared by the evaluation engine, the CLI and the reports (numpy and scipy, no torch).

A method's score varies with two things a board must account for: the **test images** (another draw of
images would give another mean) and the **training run** (another seed trains another network). Values
arrive as a (seeds, images) array per row: one row of per-image values per seed, all on the same test
images in the same order; a set-level metric (FID) has one value per seed, (seeds, 1).

``mean_interval`` and ``compare_means`` estimate the variance of a mean (or of a difference of means) as
the sum of a seed part -- the spread of the per-seed means, divided by the number of seeds -- and an image
part -- the spread of the per-image values (for a difference: the paired per-image differences),
divided by the number of images -- with Welch-Satterthwaite degrees of freedom, and give t intervals.
Reference rows (gray input, ground truth) involve no training: their seed part is zero by construction
(``fixed``). A row trained with one seed has no estimate of its seed part, so it cannot be compared:
the result says it needs seeds, never "distinguishable". Both parts count the seed-by-image interaction,
which makes the test slightly conservative; the test suite's simulations check its error rates.

``tests`` > 1 makes the interval simultaneous over a family of that many comparisons (Bonferroni: each
at level 1 − 0.05 / tests), so the chance that *any* interval of the family misses its true difference,
and so of any false "distinguishable" verdict, is at most 5 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as distributions

LEVEL = 0.95

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


def _as_sample(values) -> np.ndarray | None:
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(1, -1) if values.ndim == 1 else values
    if values.ndim != 2 or not values.size or not np.isfinite(values).all():
        return None
    return values


@dataclass
class _Side:
    """What one row contributes to the variance of its mean: the seed part (with its degrees of freedom)
    and the seed-by-image interaction mean square, which the image part must not count twice."""

    seed_variance: float | None  # variance of the mean over seeds; None: unknown (one seed)
    seed_df: int
    interaction: float  # residual mean square of the (seeds x images) two-way layout, / seeds

    @classmethod
    def of(cls, values: np.ndarray, fixed: bool) -> "_Side":
        seeds, images = values.shape
        if fixed:
            return cls(0.0, 0, 0.0)
        if seeds < 2:
            return cls(None, 0, 0.0)
        seed_variance = float(values.mean(axis=1).var(ddof=1)) / seeds
        interaction = 0.0
        if images >= 2:
            residual = values - values.mean(axis=1, keepdims=True) - values.mean(axis=0) + values.mean()
            interaction = float((residual**2).sum()) / ((seeds - 1) * (images - 1)) / seeds
        return cls(seed_variance, seeds - 1, interaction)


def _t_interval(estimate: float, sides: list[_Side], image_spread: float | None, images: int,
                tests: int, level: float) -> dict:
    """The interval and p-value of ``estimate`` (module docstring): variance = seed parts + image part.

    The image part is the spread of the per-image values over images, less the seed-by-image interaction
    the seed parts already hold. Degrees of freedom are the seed parts' (Welch-Satterthwaite): adding an
    almost exactly known image part to them only thins the tails, so this is conservative, where pooling
    a 2-df seed part with a 300-df image part into one Satterthwaite df is not (2x the nominal error rate
    at 3 seeds and a Bonferroni level, in simulation).
    """
    seed_parts = [(s.seed_variance, s.seed_df) for s in sides if s.seed_df]
    image_part = 0.0
    if image_spread is not None and images >= 2:
        image_part = max(0.0, image_spread - math.fsum(s.interaction for s in sides)) / images
    seed_variance = math.fsum(v for v, _ in seed_parts)
    variance = seed_variance + image_part
    alpha = (1 - level) / max(tests, 1)
    if variance <= 0:  # nothing varies (e.g. two fixed references): the difference is exact
        return {"ci95": [estimate, estimate], "se": 0.0, "df": None, "p": 1.0 if estimate == 0 else 0.0,
                "level": 1 - alpha}
    if seed_variance > 0:
        df = seed_variance**2 / math.fsum(v**2 / d for v, d in seed_parts if v > 0)
    else:  # no seed variation at all (references, or deterministic training): the images decide
        df = images - 1
    se = math.sqrt(variance)
    half = float(distributions.t.ppf(1 - alpha / 2, df)) * se
    p = float(2 * distributions.t.sf(abs(estimate) / se, df))
    return {"ci95": [estimate - half, estimate + half], "se": se, "df": float(df), "p": p, "level": 1 - alpha}


def mean_interval(values, *, fixed: bool = False, level: float = LEVEL) -> dict | None:
    """The mean of (seeds, images) values with a t interval over seeds and images (module docstring).

    Returns {"mean", "ci95", "se", "df", "n_seeds", "n_images"}, or None when non-finite or when one seed
    leaves the training variance unknown (``fixed`` rows excepted).
    """
    values = _as_sample(values)
    if values is None:
        return None
    side = _Side.of(values, fixed)
    if side.seed_variance is None:
        return None
    seeds, images = values.shape
    spread = float(values.mean(axis=0).var(ddof=1)) if images >= 2 else None
    result = _t_interval(float(values.mean()), [side], spread, images, 1, level)
    return {"mean": float(values.mean()), "ci95": result["ci95"], "se": result["se"], "df": result["df"],
            "n_seeds": seeds, "n_images": images}


def compare_means(a, b, *, fixed_a: bool = False, fixed_b: bool = False, tests: int = 1,
                  level: float = LEVEL) -> dict | None:
    """The difference of means ``a − b`` with its t interval over seeds and (paired) images.

    ``a`` and ``b`` are (seeds, images) on the *same* images in the same order (the seed counts may
    differ), or (seeds, 1) per-seed values of a set-level metric. ``tests``: the size of the family the
    interval is simultaneous over (Bonferroni). Returns {"difference", "ci95", "se", "df", "p" (unadjusted,
    two-sided), "level", "tests", "n_images", "n_seeds": [a, b], "needs_seeds": the sides ("a", "b") with
    one seed} -- ``ci95`` is None when a side needs seeds -- or None when the values cannot be compared
    (other image counts, non-finite values).
    """
    a, b = _as_sample(a), _as_sample(b)
    if a is None or b is None or a.shape[1] != b.shape[1]:
        return None
    images = a.shape[1]
    result = {"difference": float(a.mean() - b.mean()), "n_images": int(images),
              "n_seeds": [int(a.shape[0]), int(b.shape[0])], "tests": int(tests)}
    sides = {"a": _Side.of(a, fixed_a), "b": _Side.of(b, fixed_b)}
    result["needs_seeds"] = [label for label, side in sides.items() if side.seed_variance is None]
    if result["needs_seeds"]:
        return result | {"ci95": None, "se": None, "df": None, "p": None, "level": None}
    spread = float((a.mean(axis=0) - b.mean(axis=0)).var(ddof=1)) if images >= 2 else None
    return result | _t_interval(result["difference"], list(sides.values()), spread, images, tests, level)


def interval_sign(ci95) -> int:
    """+1 when a 95 % interval lies above 0, -1 below, 0 when it contains 0 (not distinguishable)."""
    lo, hi = ci95
    return 1 if lo > 0 else -1 if hi < 0 else 0
