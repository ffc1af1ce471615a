"""Pairwise verdicts: is the difference between two rows distinguishable, or a tie?

Every comparison is a paired bootstrap (``bench.stats.paired_bootstrap``) over the per-image values
the runs stored: the same test images on both sides (matched by name) and, with several seeds,
the seeds resampled too. A difference is *distinguishable* when its 95 % interval excludes 0;
otherwise the two rows are *tied*. Rows whose test images differ, or that have no per-image
values for the metric (a set-level metric such as FID, the ground truth's infinite PSNR), are
*not comparable* and say why.

Ranks come from the verdicts on the ranking metric: a method's rank is 1 + the number of methods
distinguishably better than it, so methods that cannot be told apart share a rank. Pairs that could
not be compared fall back to their means (and the board says so). Ranks never go down the table
(sorted by mean): a method never outranks one with a better mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.reports.runs import Run
from bench.stats import interval_sign, paired_bootstrap


def signed(value: float, digits: int = 3) -> str:
    """A difference for reading: explicit sign, typographic minus, ``digits`` significant digits."""
    text = f"{value:+.{digits}g}"
    return text.replace("-", "−")


@dataclass
class Sample:
    """A row's per-image values of one metric: (seeds, images), or why there are none."""

    names: list | None = None
    values: np.ndarray | None = None
    reason: str | None = None


def row_sample(runs: list[Run], metric: str) -> Sample:
    """The per-image values of ``metric`` over the runs (seeds) that scored it."""
    scored = [r for r in runs if r.status == "ok" and r.metric_details.get(metric, {}).get("status") == "ok"]
    if not scored:
        return Sample(reason=f"no {metric} value")
    if any(math.isinf(r.metric_details[metric]["value"]) for r in scored):
        return Sample(reason=f"{metric} is infinite (identical images)")
    per_image = [r.per_image(metric) for r in scored]
    if any(values is None for values in per_image):
        return Sample(reason=f"{metric} has no per-image values")
    names = [r.image_names() for r in scored]
    if any(n is None or len(n) != len(v) for n, v in zip(names, per_image)):
        return Sample(reason="no test image names recorded")
    if any(n != names[0] for n in names):
        return Sample(reason="its seeds scored different test images")
    return Sample(names=names[0], values=np.asarray(per_image, dtype=np.float64))


@dataclass
class Comparison:
    """``left − right`` on ``metric``; ``sign`` is +1/−1 when the interval excludes 0, else 0."""

    metric: str
    left: str
    right: str
    higher_is_better: bool | None
    difference: float | None = None
    ci95: list[float] | None = None
    n_images: int | None = None
    n_seeds: list[int] = field(default_factory=list)
    reason: str | None = None  # why it could not be compared
    problems: list[tuple[str, str]] = field(default_factory=list)  # (row label, what it lacks) behind ``reason``

    @property
    def comparable(self) -> bool:
        return self.ci95 is not None

    @property
    def sign(self) -> int:
        return interval_sign(self.ci95) if self.ci95 else 0

    @property
    def verdict(self) -> str:
        if not self.comparable:
            return "not comparable"
        return "distinguishable" if self.sign else "tied"

    @property
    def better(self) -> str | None:
        """The distinguishably better side (directional metrics only)."""
        if not self.sign or self.higher_is_better is None:
            return None
        return self.left if (self.sign > 0) == self.higher_is_better else self.right

    @property
    def interval_text(self) -> str:
        if not self.comparable:
            return f"not comparable ({self.reason})"
        return f"{signed(self.difference)} [{signed(self.ci95[0])}, {signed(self.ci95[1])}]"

    @property
    def text(self) -> str:
        """e.g. ``pix2pix vs baseline: lpips −0.071 [−0.08, −0.062]``."""
        return f"{self.left} vs {self.right}: {self.metric} {self.interval_text}"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "left": self.left, "right": self.right, "difference": self.difference,
                "ci95": self.ci95, "verdict": self.verdict, "better": self.better, "n_images": self.n_images,
                "n_seeds": self.n_seeds, "reason": self.reason, "text": self.text}


def compare(metric: str, higher_is_better: bool | None, left: tuple[str, Sample], right: tuple[str, Sample]) -> Comparison:
    (left_label, a), (right_label, b) = left, right
    comparison = Comparison(metric, left_label, right_label, higher_is_better)
    comparison.problems = [(label, s.reason) for label, s in (left, right) if s.reason]
    if comparison.problems:
        comparison.reason = "; ".join(f"{label}: {reason}" for label, reason in comparison.problems)
        return comparison
    b_values = b.values
    if a.names != b.names:
        if sorted(map(str, a.names)) != sorted(map(str, b.names)) or len(set(map(str, a.names))) != len(a.names):
            comparison.reason = "different test images"
            return comparison
        position = {str(name): k for k, name in enumerate(b.names)}  # same images, other order
        b_values = b.values[:, [position[str(name)] for name in a.names]]
    result = paired_bootstrap(a.values, b_values)
    if result is None:
        comparison.reason = "fewer than two test images"
        return comparison
    comparison.difference, comparison.ci95 = result["difference"], result["ci95"]
    comparison.n_images, comparison.n_seeds = result["n_images"], result["n_seeds"]
    return comparison


def all_pairs(metric: str, higher_is_better: bool | None, entries: list[tuple[str, Sample]]) -> list[Comparison]:
    """Every pair in the given order (earlier entries on the left)."""
    return [compare(metric, higher_is_better, entries[i], entries[j])
            for i in range(len(entries)) for j in range(i + 1, len(entries))]


def rank_with_ties(labels: list[str], means: list[float], higher_is_better: bool,
                   comparisons: list[Comparison]) -> tuple[list[int], dict[str, list[str]]]:
    """Ranks for ``labels`` (already sorted best mean first) and, per label, the labels it is tied with."""
    by_pair = {(c.left, c.right): c for c in comparisons} | {(c.right, c.left): c for c in comparisons}
    mean = dict(zip(labels, means))

    def beats(x: str, y: str) -> bool:
        comparison = by_pair[x, y]
        if comparison.comparable:
            return comparison.better == x
        return mean[x] > mean[y] if higher_is_better else mean[x] < mean[y]

    ranks, floor = [], 1
    for label in labels:
        floor = max(floor, 1 + sum(beats(other, label) for other in labels if other != label))
        ranks.append(floor)
    ties = {label: [other for other in labels if other != label and by_pair[label, other].verdict == "tied"]
            for label in labels}
    return ranks, ties


def untested_summary(comparisons: list[Comparison]) -> str:
    """Why pairs could not be compared, each reason once with the rows or pairs it concerns."""
    by_reason: dict[str, list[str]] = {}
    for c in comparisons:
        if c.comparable:
            continue
        for label, reason in c.problems or [(f"{c.left} vs {c.right}", c.reason)]:
            if label not in by_reason.setdefault(reason, []):
                by_reason[reason].append(label)
    return "; ".join(f"{reason} ({', '.join(labels)})" for reason, labels in by_reason.items())
