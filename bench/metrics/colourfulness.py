"""Colourfulness (Hasler & Suesstrunk 2003) of the outputs, and its gap to the ground truth's.

Per image, on 0-255 RGB: rg = R - G, yb = (R + G) / 2 - B,
M = sqrt(var(rg) + var(yb)) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)  (population variances),
the paper's M^(3). Some widely copied code takes |R - G| and |(R + G)/2 - B| instead, which gives
other numbers: compare only values computed the same way (settings ``hasler-suesstrunk-m3``).

* ``colourfulness``: mean M of the outputs. Descriptive: higher is more vivid (as colorization
  papers report it, "CF up"), but a garish output scores high too -- read it with the gap.
* ``delta_colourfulness``: |mean M(outputs) - mean M(ground truth)| over the test set, as in
  recent colorization papers (DDColor's "delta CF", lower is better). It exposes the classic
  failure modes PSNR rewards: sepia / washed-out outputs (negative gap) and colour casts. Per
  image the *signed* gap M(output) - M(truth) is kept; the set value is the absolute value of
  their mean, with a bootstrap interval of that absolute mean.
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
    description = "|mean colourfulness of outputs - of ground truth| (sepia, casts and washed-out colour show here)"
    higher_is_better = False
    per_image = False  # the set value is |mean gap|, not a mean of per-image values

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.pairs: list[torch.Tensor] = []  # (N, 2): colourfulness of output and truth, kept on the device

    @property
    def settings(self) -> str:
        return f"delta-colourfulness-abs-mean-gap-{SETTINGS}"

    def update(self, pred, target):
        self.pairs.append(torch.stack([colourfulness(pred), colourfulness(target)], dim=1))
        return None

    def compute(self):
        pred_cf, target_cf = torch.cat(self.pairs).cpu().numpy().T  # one transfer, after the pass
        gaps = pred_cf - target_cf
        signed = float(gaps.mean())
        return {
            "value": abs(signed),
            "signed_gap": signed,  # < 0: less colourful than the truth (sepia, washed out)
            "pred_colourfulness": float(pred_cf.mean()),
            "target_colourfulness": float(target_cf.mean()),
            "ci95": bootstrap_ci(gaps, statistic=np.abs),
            "n": int(gaps.size),
            "per_image": [float(v) for v in gaps],  # signed gaps
        }


@hookimpl
def register_metrics(register):
    register(Colourfulness)
    register(DeltaColourfulness)
