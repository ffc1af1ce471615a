"""``ab_hist_swd``: how far the outputs' colours are from the ground truth's, as distributions of ab.

Colourfulness and its gap measure *how much* colour there is, not *which* colours: a 90-degree hue
rotation of the truth keeps its colourfulness, so ``delta_colourfulness`` scores it better than a
slightly too vivid output (ab x 1.25). This metric compares the colours themselves, so a hue
rotation cannot win (on the ``sample`` test split at 64 px: ab x 1.25 3.1, ab x 0.5 6.6, the gray
input 12.7, a 90-degree rotation 14.7).

Definition (set-level, lower is better, in Lab ab units; 0 when the outputs' ab distribution equals
the truth's):

1. Lab of every pixel (``bench.color.rgb_to_lab``: sRGB, D65, scikit-image's constants; float64).
2. Per image, a 2-D histogram of (a, b) on the grid of Zhang et al. 2016 (bin width 10): 23 x 23
   bins centred on -110, -100, ..., 0, ..., 110 in each of a and b (edges at odd multiples of 5,
   so neutral pixels, ab = 0, sit mid-bin and float noise cannot split them); values beyond
   [-115, 115) go to the edge bins (sRGB never gets there: a in [-86, 98], b in [-108, 95]).
3. Each image's histogram is normalised to sum 1 and averaged over the test images: the set's ab
   distribution ``p`` (outputs) and ``q`` (ground truth), every image weighing the same whatever its
   size. The two sets are the same images (paired), as for every other metric.
4. The distance is the sliced Wasserstein-1 (earth mover's) distance between ``p`` and ``q`` as
   point masses on the bin centres c_j: the mean over 64 directions u_k = (cos t_k, sin t_k),
   t_k = pi k / 64, of the 1-D Wasserstein-1 distance between the projections c_j . u_k weighted by
   ``p`` and by ``q`` (the integral of |F_p - F_q|, F the cumulative distributions along u_k). It is
   the average distance, in ab units, that colour mass has to move along a direction to turn one
   distribution into the other: geometric (a slightly too vivid output is close, a hue rotation or
   a gray output is far) and never saturating, unlike bin-overlap measures (histogram
   intersection, JS divergence) that score "one bin off" like "opposite colour".

It sees the colour distribution only, not where the colours are: a method that puts the right
colours on the wrong objects scores well here; the per-image metrics catch that.

The histograms are counted on the device during the pass (an integer scatter-add: exact, so the
same whatever the batch split, no host sync per batch) and fetched once; the distance and its
interval are computed on the host in float64. ``ci95`` is a 95 % percentile bootstrap over test
images (1000 resamples, seed 0; each resample draws images with replacement, the same images for
outputs and truth). A distance is biased upward on resamples (noise only adds), so for near-equal
sets the interval can sit above the value.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from bench.api import Metric, hookimpl
from bench.color import rgb_to_lab

BIN_WIDTH = 10.0
BINS = 23  # per axis: centres -110, -100, ..., 110
AB_LIMIT = BIN_WIDTH * BINS / 2  # 115: the outer edges
DIRECTIONS = 64
RESAMPLES, SEED = 1000, 0
SETTINGS = (f"ab-hist-swd-lab-d65-grid{BIN_WIDTH:g}-{BINS}x{BINS}-centres-pm{AB_LIMIT - BIN_WIDTH / 2:g}"
            f"-image-weighted-sliced-w1-{DIRECTIONS}dirs")


def bin_centres() -> np.ndarray:
    """(BINS * BINS, 2) ab of the bin centres, in the histograms' (a-major) order."""
    axis = -AB_LIMIT + BIN_WIDTH * (np.arange(BINS) + 0.5)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def ab_histograms(images: torch.Tensor) -> torch.Tensor:
    """Per-image ab histogram counts of (N, 3, H, W) RGB in [0, 1]: (N, BINS * BINS) int64, on their device."""
    n = images.shape[0]
    ab = rgb_to_lab(images.double())[:, 1:]
    index = torch.floor((ab + AB_LIMIT) / BIN_WIDTH).clamp_(0, BINS - 1).long()
    flat = (index[:, 0] * BINS + index[:, 1]).flatten(1)  # (N, H * W): the bin of each pixel
    flat = flat + BINS * BINS * torch.arange(n, device=images.device)[:, None]
    counts = torch.zeros(n * BINS * BINS, dtype=torch.int64, device=images.device)
    counts.scatter_add_(0, flat.flatten(), torch.ones_like(flat).flatten())  # integers: exact in any order
    return counts.view(n, BINS * BINS)


@lru_cache(maxsize=8)
def _slices(support: bytes, directions: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each direction: the order of the supported bins' projections and the gaps between them."""
    centres = bin_centres()[np.frombuffer(support, dtype=bool)]
    slices = []
    for t in np.pi * np.arange(directions) / directions:
        projected = centres @ np.array([np.cos(t), np.sin(t)])
        order = np.argsort(projected, kind="stable")
        slices.append((order, np.diff(projected[order])))
    return slices


def sliced_wasserstein(p: np.ndarray, q: np.ndarray, directions: int = DIRECTIONS) -> np.ndarray:
    """Sliced W1 between distributions on the bin centres: p, q of shape (..., BINS * BINS), each summing to 1."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    support = (p != 0).reshape(-1, p.shape[-1]).any(axis=0) | (q != 0).reshape(-1, q.shape[-1]).any(axis=0)
    difference = (p - q)[..., support]  # bins empty on both sides add nothing to |F_p - F_q|
    total = np.zeros(difference.shape[:-1])
    for order, gaps in _slices(support.tobytes(), directions):
        cdf_gap = np.cumsum(difference[..., order], axis=-1)[..., :-1]  # F_p - F_q between consecutive points
        total += np.abs(cdf_gap) @ gaps
    return total / directions


def resample_counts(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n): how often each image is drawn in each bootstrap resample."""
    images = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    counts = np.bincount((images + n * np.arange(resamples)[:, None]).ravel(), minlength=resamples * n)
    return counts.reshape(resamples, n).astype(np.float64)


def ab_hist_distance(pred_counts: np.ndarray, target_counts: np.ndarray) -> dict:
    """The metric from per-image ab histogram counts (N, BINS * BINS) of outputs and truth (paired)."""
    pred = pred_counts / pred_counts.sum(axis=1, keepdims=True)
    target = target_counts / target_counts.sum(axis=1, keepdims=True)
    n = len(pred)
    result = {"value": float(sliced_wasserstein(pred.mean(axis=0), target.mean(axis=0))), "ci95": None}
    if n >= 2:
        counts = resample_counts(n)
        distances = sliced_wasserstein(counts @ pred / n, counts @ target / n)
        result["ci95"] = [float(np.percentile(distances, 2.5)), float(np.percentile(distances, 97.5))]
    return result


class ABHistSWD(Metric):
    name = "ab_hist_swd"
    description = ("sliced Wasserstein-1 (earth mover's) distance between the Lab ab histograms of outputs and "
                   "ground truth over the test set, in ab units; hue-aware (a hue rotation scores badly)")
    higher_is_better = False
    per_image = False  # a distance between two sets' colour distributions

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.counts: list[torch.Tensor] = []  # (N, 2, BINS * BINS) per batch, kept on the device

    @property
    def settings(self) -> str:
        return SETTINGS

    def update(self, pred, target):
        self.counts.append(torch.stack([ab_histograms(pred), ab_histograms(target)], dim=1).to(torch.int32))
        return None

    def compute(self):
        if not self.counts:
            raise ValueError("no images were evaluated")
        counts = torch.cat(self.counts).cpu().numpy().astype(np.float64)  # one transfer, after the pass
        outer = AB_LIMIT - BIN_WIDTH / 2
        return {**ab_hist_distance(counts[:, 0], counts[:, 1]), "n": len(counts), "n_reference": len(counts),
                "bins": f"{BINS}x{BINS}, width {BIN_WIDTH:g}, centres -{outer:g}..{outer:g}", "directions": DIRECTIONS}


@hookimpl
def register_metrics(register):
    register(ABHistSWD)
