"""The interface of metric plugins.

The evaluation engine (``bench.evaluation``) feeds every metric the same batches, once: predicted and
target RGB as float tensors in [0, 1], shape (N, 3, H, W), on the evaluation device, in full
precision (autocast off, TF32 off).

* Per-image metrics return one value per image from ``update``, as a tensor that may stay on the
  device: the engine keeps it there and fetches every value once, after the last batch, then
  averages them and adds a bootstrap confidence interval.
* Set-level metrics (FID, KID) return ``None`` from ``update``, accumulate what they need, and
  report in ``compute``.
* ``update`` should not wait on the device (no ``.item()``, ``.cpu()`` or data-dependent Python
  branches per batch); checks that need a device value are kept there and raised from ``finish``.

A metric that cannot run here (missing weights) raises :class:`bench.errors.Unavailable` from
``__init__``; it is then recorded as unavailable with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench.options import Options

DEFAULT_RANK_BY = "lpips"  # what a board is ranked by, and what bench run's closing table shows first
NEXT_METRICS = ("psnr", "ssim", "fid", "kid")  # shown next, at a glance: the first ones with values
GLANCE = 3  # metrics shown at a glance: the ranking metric and two more


def glance_metrics(first: str | None, present, directional) -> list[str]:
    """The metrics shown at a glance (the board's unfolded columns, ``bench run``'s closing table): ``first``
    (the ranking metric), then the first of ``NEXT_METRICS``, then of the other ``directional`` metrics, that
    have values (``present``), ``GLANCE`` in all."""
    present, names = set(present), [first] if first else []
    for name in (*NEXT_METRICS, *directional):
        if len(names) < GLANCE and name in present and name not in names:
            names.append(name)
    return names


@dataclass
class MetricContext:
    device: torch.device
    weights: Any = None  # bench.weights.WeightStore
    cache_dir: Path | None = None  # where set-level metrics may cache reference statistics
    reference_key: str | None = None  # identifies the target set (dataset + split + size) for caching
    shared: dict = field(default_factory=dict)  # per-pass scratch space shared between metrics


class Metric:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # True: higher is better (↑); False: lower is better (↓); None: descriptive, no "best" (e.g. colourfulness).
    higher_is_better: ClassVar[bool | None] = True
    per_image: ClassVar[bool] = True
    Options: ClassVar[type[Options]] = Options

    def __init__(self, context: MetricContext, options: Options | None = None):
        self.context = context
        self.device = context.device
        self.options = options if options is not None else self.Options()

    @property
    def settings(self) -> str:
        """How exactly the value was computed, e.g. ``lpips-alex-v0.1``."""
        return self.name

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """Per-image values (N,) for per-image metrics; ``None`` for set-level ones."""
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the last batch: raise here what deferred checks found (the metric fails)."""

    def compute(self) -> dict[str, Any]:
        """Set-level metrics: {"value": float, ...extra fields such as "std", "n", "warning"}."""
        return {}
