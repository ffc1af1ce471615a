"""Pairwise verdicts: is the difference between two rows distinguishable, or a tie?

Every comparison is a t interval for the difference of means over seeds and paired test images
(``bench.stats.compare_means``): the same test images on both sides (matched by name), each row's
seeds giving its training variance. A set-level metric (FID, KID) is compared on its per-seed values.
A difference is *distinguishable* when its interval excludes 0; otherwise the two rows are *tied*.

The intervals are **simultaneous over a family**: all the comparisons a board makes on one metric
(every pair of methods, and each method against the gray input on the ranking metric) share a 95 %
level (Bonferroni), so the chance that a board shows *any* false "distinguishable" is at most 5 %.

A method trained with one seed has no estimate of its training variance: its comparisons *need seeds*
and are never distinguishable (reference rows involve no training and need none). Rows whose test
images differ, or without values for the metric, are *not comparable* and say why.

Ranks come from the verdicts on the ranking metric: a method's rank is 1 + the number of methods
distinguishably better than it, so methods that cannot be told apart share a rank; pairs that need seeds
count as ties. Pairs that could not be compared for other reasons fall back to their means (and the board
says so). Ranks never go down the table (sorted by mean): a method never outranks one with a better mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.reports.runs import Run
from bench.stats import compare_means, interval_sign


def signed(value: float, digits: int = 3) -> str:
    """A difference for reading: explicit sign, typographic minus, ``digits`` significant digits."""
    text = f"{value:+.{digits}g}"
    return text.replace("-", "−")


@dataclass
class Sample:
    """A row's values of one metric: (seeds, images) per-image values, or (seeds, 1) set-level values;
    or why there are none. ``fixed``: a reference row (no training, no seed variance)."""

    names: list | None = None
    values: np.ndarray | None = None
    reason: str | None = None
    fixed: bool = False
    set_level: bool = False


def row_sample(runs: list[Run], metric: str) -> Sample:
    """The values of ``metric`` over the runs (seeds) that scored it."""
    scored = [r for r in runs if r.status == "ok" and r.metric_details.get(metric, {}).get("status") == "ok"]
    if not scored:
        return Sample(reason=f"no {metric} value")
    if any(math.isinf(r.metric_details[metric]["value"]) for r in scored):
        return Sample(reason=f"{metric} is infinite (identical images)")
    fixed = all(r.is_reference for r in scored)
    names = [r.image_names() for r in scored]
    if any(n is None for n in names):
        return Sample(reason="no test image names recorded")
    if any(n != names[0] for n in names):
        return Sample(reason="its seeds scored different test images")
    per_image = [r.per_image(metric) for r in scored]
    if all(values is None for values in per_image):  # a set-level metric: one value per seed
        values = np.asarray([[r.metric_details[metric]["value"]] for r in scored], dtype=np.float64)
        return Sample(names=names[0], values=values, fixed=fixed, set_level=True)
    if any(values is None or len(values) != len(names[0]) for values in per_image):
        return Sample(reason=f"{metric} has no per-image values for every seed")
    return Sample(names=names[0], values=np.asarray(per_image, dtype=np.float64), fixed=fixed)


@dataclass
class Comparison:
    """``left − right`` on ``metric``; ``sign`` is +1/−1 when the interval excludes 0, else 0."""

    metric: str
    left: str
    right: str
    higher_is_better: bool | None
    difference: float | None = None
    ci95: list[float] | None = None  # simultaneous over ``tests`` comparisons
    tests: int = 1  # the size of the family the interval is simultaneous over
    p: float | None = None  # unadjusted, two-sided
    n_images: int | None = None
    n_seeds: list[int] = field(default_factory=list)
    needs_seeds: list[str] = field(default_factory=list)  # the row labels trained with one seed
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
        if self.needs_seeds:
            return "needs seeds"
        if not self.comparable:
            return "not comparable"
        return "distinguishable" if self.sign else "tied"

    @property
    def undecided(self) -> bool:
        """No evidence either way: a tie, or a pair whose training variance is unknown."""
        return self.verdict in ("tied", "needs seeds")

    @property
    def better(self) -> str | None:
        """The distinguishably better side (directional metrics only)."""
        if not self.sign or self.higher_is_better is None:
            return None
        return self.left if (self.sign > 0) == self.higher_is_better else self.right

    @property
    def level_text(self) -> str:
        return "95 %" if self.tests <= 1 else f"95 % simultaneous over {self.tests}"

    @property
    def interval_text(self) -> str:
        if self.needs_seeds:
            return (f"{signed(self.difference)}, needs seeds ({', '.join(self.needs_seeds)}: one seed, "
                    f"training variance unknown)")
        if not self.comparable:
            return f"not comparable ({self.reason})"
        return f"{signed(self.difference)} [{signed(self.ci95[0])}, {signed(self.ci95[1])}]"

    @property
    def text(self) -> str:
        """e.g. ``pix2pix vs baseline: lpips −0.071 [−0.08, −0.062]``."""
        return f"{self.left} vs {self.right}: {self.metric} {self.interval_text}"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "left": self.left, "right": self.right, "difference": self.difference,
                "ci95": self.ci95, "level": self.level_text, "tests": self.tests, "p": self.p,
                "verdict": self.verdict, "better": self.better, "n_images": self.n_images,
                "n_seeds": self.n_seeds, "needs_seeds": self.needs_seeds, "reason": self.reason, "text": self.text}


def compare(metric: str, higher_is_better: bool | None, left: tuple[str, Sample], right: tuple[str, Sample],
            tests: int = 1) -> Comparison:
    """``left − right``; ``tests``: the size of the family the interval is simultaneous over."""
    (left_label, a), (right_label, b) = left, right
    comparison = Comparison(metric, left_label, right_label, higher_is_better, tests=tests)
    comparison.problems = [(label, s.reason) for label, s in (left, right) if s.reason]
    if comparison.problems:
        comparison.reason = "; ".join(f"{label}: {reason}" for label, reason in comparison.problems)
        return comparison
    if a.set_level != b.set_level:
        comparison.reason = "per-image values on one side only"
        return comparison
    b_values = b.values
    if a.names != b.names:
        if sorted(map(str, a.names)) != sorted(map(str, b.names)) or len(set(map(str, a.names))) != len(a.names):
            comparison.reason = "different test images"
            return comparison
        if not b.set_level:
            position = {str(name): k for k, name in enumerate(b.names)}  # same images, other order
            b_values = b.values[:, [position[str(name)] for name in a.names]]
    result = compare_means(a.values, b_values, fixed_a=a.fixed, fixed_b=b.fixed, tests=tests)
    if result is None:
        comparison.reason = "values cannot be compared"
        return comparison
    comparison.difference, comparison.ci95, comparison.p = result["difference"], result["ci95"], result["p"]
    comparison.n_images, comparison.n_seeds = result["n_images"], result["n_seeds"]
    comparison.needs_seeds = [(left_label, right_label)[side == "b"] for side in result["needs_seeds"]]
    return comparison


def all_pairs(metric: str, higher_is_better: bool | None, entries: list[tuple[str, Sample]],
              tests: int | None = None) -> list[Comparison]:
    """Every pair in the given order (earlier entries on the left), simultaneous over ``tests``
    comparisons (default: the pairs themselves)."""
    pairs = [(i, j) for i in range(len(entries)) for j in range(i + 1, len(entries))]
    family = tests if tests is not None else len(pairs)
    return [compare(metric, higher_is_better, entries[i], entries[j], tests=family) for i, j in pairs]


def rank_with_ties(labels: list[str], means: list[float], higher_is_better: bool,
                   comparisons: list[Comparison]) -> tuple[list[int], dict[str, list[str]]]:
    """Ranks for ``labels`` (already sorted best mean first) and, per label, the labels it is tied with."""
    by_pair = {(c.left, c.right): c for c in comparisons} | {(c.right, c.left): c for c in comparisons}
    mean = dict(zip(labels, means))

    def beats(x: str, y: str) -> bool:
        comparison = by_pair[x, y]
        if comparison.comparable or comparison.needs_seeds:
            return comparison.better == x
        return mean[x] > mean[y] if higher_is_better else mean[x] < mean[y]

    ranks, floor = [], 1
    for label in labels:
        floor = max(floor, 1 + sum(beats(other, label) for other in labels if other != label))
        ranks.append(floor)
    ties = {label: [other for other in labels if other != label and by_pair[label, other].undecided]
            for label in labels}
    return ranks, ties


def untested_summary(comparisons: list[Comparison]) -> str:
    """Why pairs could not be compared, each reason once with the rows or pairs it concerns."""
    by_reason: dict[str, list[str]] = {}
    for c in comparisons:
        if c.comparable or c.needs_seeds:
            continue
        for label, reason in c.problems or [(f"{c.left} vs {c.right}", c.reason)]:
            if label not in by_reason.setdefault(reason, []):
                by_reason[reason].append(label)
    return "; ".join(f"{reason} ({', '.join(labels)})" for reason, labels in by_reason.items())
