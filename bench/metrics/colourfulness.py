"""Colourfulness (Hasler & Suesstrunk 2003) of the outputs, and its gap to the ground truth's.

Per image, on 0-255 RGB: rg = R - G, yb = (R + G) / 2 - B,
M = sqrt(var(rg) + var(yb)) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)  (population variances),
the paper's M^(3). Some widely copied code takes |R - G| and |(R + G)/2 - B| instead, which gives
other numbers: compare only values computed the same way (settings ``hasler-suesstrunk-m3``).

* ``colourfulness``: mean M of the outputs. Descriptive: higher is more vivid (as colorization
  papers report it, "CF up"), but a garish output scores high too -- read it with the gap.
* ``delta_colourfulness``: the mean over test images of the per-image absolute gap
  |M(output) - M(truth)|, lower is better. It exposes the classic failure modes PSNR rewards:
  sepia / washed-out outputs and colour casts. Its per-image values are those absolute gaps, so
  the set value, its bootstrap interval, the report's paired verdicts and ranks and the across-seed
  intervals all use one quantity: the mean of the per-image values, like every per-image metric.

  Why not the papers' |mean M(outputs) - mean M(truth)| (DDColor's "delta CF"), as this metric
  was defined before? Its set value is the absolute gap of two means, but its per-image values
  were the *signed* gaps, and the report's verdicts, ranks and across-seed intervals (paired
  bootstraps of per-image means) ran on those: a duller output has a more negative mean gap, so it
  won -- pix2pix scored 4.68 and baseline 39.81, yet the verdict said "baseline better"; every
  method was "worse than gray input" though gray scored 57.35; ab x 0.5 beat ab x 1.25. Over- and
  under-colouring on different images also cancelled. Keeping the gap of means would have meant
  dropping per-image values altogether (a gap of two means has none to pair: a set-level metric,
  ordered by its value without paired intervals, like FID). So the definition changed to the mean
  per-image absolute gap, whose per-image values are what is averaged, tested and ranked: the
  truth still scores 0, the gray input mean M(truth). The settings changed with it
  (``delta-colourfulness-mean-abs-gap-per-image-hasler-suesstrunk-m3-rgb255``; values with the old
  ``delta-colourfulness-abs-mean-gap-...`` are not comparable). The papers' number is kept as a
  descriptive field: ``abs_mean_gap`` = |mean M(outputs) - mean M(truth)|, with ``signed_gap`` =
  mean M(outputs) - mean M(truth) (< 0: duller than the truth overall).

  Colourfulness is blind to hue: a 90-degree hue rotation of the truth keeps M, so it scores
  better here than a slightly too vivid output (ab x 1.25). Read it with ``ab_hist_swd``
  (``bench.metrics.ab_histogram``), which compares the colours themselves.

  The engine averages ``update``'s values for per-image metrics but then never calls ``compute``;
  this metric needs ``compute`` for the descriptive extras, so it is declared set-level
  (``per_image = False``) and returns its per-image values, mean and interval itself, computed
  exactly as the engine does for per-image metrics (``bench.stats.bootstrap_ci`` of the values).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.api import Metric, hookimpl
from bench.stats import bootstrap_ci

SETTINGS = "hasler-suesstrunk-m3-rgb255"


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk's M of (N, 3, H, W) RGB in [0, 1], per image (float64)."""
    rgb = images.double() * 255
    r, g, b = rgb[:, 0].flatten(1), rgb[:, 1].flatten(1), rgb[:, 2].flatten(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    offset = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return spread + 0.3 * offset


class Colourfulness(Metric):
    name = "colourfulness"
    description = "Colourfulness of the outputs (Hasler & Suesstrunk 2003, 0-255 RGB); descriptive, read with delta"
    higher_is_better = None  # more is not better (over-saturation is a failure too): no "best" is marked

    @property
    def settings(self) -> str:
        return f"colourfulness-{SETTINGS}"

    def update(self, pred, target):
        return colourfulness(pred)


class DeltaColourfulness(Metric):
    name = "delta_colourfulness"
    description = ("mean over images of |colourfulness of output - of ground truth| (sepia, casts and "
                   "washed-out colour show here; blind to hue)")
    higher_is_better = False
    # Per-image values are returned from ``compute`` (with the descriptive extras), see the docstring.
    per_image = False

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.pairs: list[torch.Tensor] = []  # (N, 2): colourfulness of output and truth, kept on the device

    @property
    def settings(self) -> str:
        return f"delta-colourfulness-mean-abs-gap-per-image-{SETTINGS}"

    def update(self, pred, target):
        self.pairs.append(torch.stack([colourfulness(pred), colourfulness(target)], dim=1))
        return None

    def compute(self):
        pred_cf, target_cf = torch.cat(self.pairs).cpu().numpy().T  # one transfer, after the pass
        gaps = np.abs(pred_cf - target_cf)  # the per-image values: what is averaged, ranked and tested
        signed = float(pred_cf.mean() - target_cf.mean())
        return {
            "value": float(gaps.mean()),
            "ci95": bootstrap_ci(gaps),  # the engine's interval for per-image metrics
            "n": int(gaps.size),
            "per_image": [float(v) for v in gaps],
            # Descriptive, not ranked: the set-level gap as papers report it (DDColor's |delta CF|).
            "signed_gap": signed,  # < 0: less colourful than the truth overall (sepia, washed out)
            "abs_mean_gap": abs(signed),
            "pred_colourfulness": float(pred_cf.mean()),
            "target_colourfulness": float(target_cf.mean()),
        }


@hookimpl
def register_metrics(register):
    register(Colourfulness)
    register(DeltaColourfulness)
