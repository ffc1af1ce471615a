"""The source reports' qualitative claims, checked on each board's own numbers.

Each claim is data (``CLAIMS``): a metric and two groups of methods, and the sign the claim predicts
for ``left − right``. On a board, every present (left, right) pair of rows is compared with the
interval over seeds and paired test images that the verdicts use (``bench.reports.verdicts``), and the
claim is decided symmetrically -- "supported" and "contradicted" need the same strength of evidence:

- **supported** when every present pair's 95 % interval excludes 0 on the predicted side;
- **contradicted** when every present pair's 95 % interval excludes 0 on the other side;
- **undecided** otherwise (an interval contains 0, the pairs disagree, or a method has one seed);
- **not testable on this board** when no pair could be compared (methods absent, no values).

Requiring *every* pair (an intersection-union test) keeps each decision's error at 5 % without a
multiplicity correction: a claim is only as strong as its weakest pair. The intervals that decide it
are listed with it. Nothing here is written by hand per board.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.reports.runs import Run
from bench.reports.verdicts import Comparison, compare, row_sample

L2_METHODS = ("baseline", "unet-l2")
GAN_METHODS = ("pix2pix", "pix2pix-resnet18", "pix2pix-resnet18-scratch", "cyclegan-paired", "cyclegan-unpaired")


@dataclass(frozen=True)
class Claim:
    text: str
    metric: str
    left: tuple[str, ...]
    right: tuple[str, ...]
    expected: int  # the sign the claim predicts for left − right: -1 (left lower) or +1 (left higher)
    note: str = ""
    pair_notes: dict = field(default_factory=dict)  # (left, right) -> why that pair matters


CLAIMS = (
    Claim("L2 regression is duller than the GAN methods", "colourfulness", L2_METHODS, GAN_METHODS, -1,
          note="per-image colourfulness of the outputs, L2 method − GAN method",
          pair_notes={("unet-l2", "pix2pix"): "same generator: the cleanest pair"}),
    Claim("The GAN methods beat L2 regression on LPIPS", "lpips", GAN_METHODS, L2_METHODS, -1,
          note="per-image LPIPS, GAN method − L2 method (lower is better); FID is set-level, with no "
               "per-image values to pair, so it is not used here",
          pair_notes={("pix2pix", "unet-l2"): "same generator: the cleanest pair"}),
    Claim("Unpaired CycleGAN is more colourful than paired CycleGAN", "colourfulness", ("cyclegan-unpaired",),
          ("cyclegan-paired",), +1, note="per-image colourfulness of the outputs, unpaired − paired"),
)

SUPPORTED, CONTRADICTED, UNDECIDED, NOT_TESTABLE = "supported", "contradicted", "undecided", "not testable on this board"


@dataclass
class Finding:
    claim: Claim
    verdict: str
    deciding: list[Comparison]  # the intervals that decide the verdict
    compared: list[Comparison]  # every pair that could be compared
    skipped: list[Comparison]  # present pairs that could not be compared, with the reason
    missing: list[str]  # the claim's methods without scores on this board (absent, failed or skipped)

    @property
    def summary(self) -> str:
        if self.verdict == NOT_TESTABLE:
            if not self.compared and not self.skipped:
                return "none of its method pairs has scores on this board"
            return "no pair could be compared: " + "; ".join(c.text for c in self.skipped)
        return "; ".join(c.text for c in self.deciding)

    def pair_note(self, comparison: Comparison) -> str:
        return self.claim.pair_notes.get((comparison.left, comparison.right), "")

    def to_dict(self) -> dict:
        return {"claim": self.claim.text, "metric": self.claim.metric, "expected_sign": self.claim.expected,
                "note": self.claim.note, "verdict": self.verdict, "summary": self.summary,
                "deciding": [c.to_dict() for c in self.deciding], "compared": [c.to_dict() for c in self.compared],
                "not_comparable": [c.to_dict() for c in self.skipped], "absent_methods": self.missing}


def check(claim: Claim, rows: dict[str, list[tuple[str, list[Run]]]]) -> Finding:
    """``rows``: method name -> [(row label, the row's runs)] on one board (a method may have several rows,
    one per set of changed options)."""
    samples = {m: [(label, row_sample(runs, claim.metric)) for label, runs in rows.get(m, [])]
               for m in claim.left + claim.right}
    comparisons = [compare(claim.metric, None, left, right)
                   for l_method in claim.left for r_method in claim.right
                   for left in samples[l_method] for right in samples[r_method]]
    compared = [c for c in comparisons if c.comparable]
    unseeded = [c for c in comparisons if c.needs_seeds]
    skipped = [c for c in comparisons if not c.comparable and not c.needs_seeds]
    missing = [m for m in dict.fromkeys(claim.left + claim.right) if m not in rows]
    if not compared and not unseeded:
        verdict, deciding = NOT_TESTABLE, []
    elif not unseeded and all(c.sign == claim.expected for c in compared):
        verdict, deciding = SUPPORTED, compared
    elif not unseeded and all(c.sign == -claim.expected for c in compared):
        verdict, deciding = CONTRADICTED, compared
    else:  # the pairs that keep it from either side: ties, one-seed pairs, or a disagreement
        verdict = UNDECIDED
        signs = {c.sign for c in compared}
        deciding = unseeded + [c for c in compared if c.sign == 0 or len(signs - {0}) > 1]
    return Finding(claim, verdict, deciding, compared, skipped, missing)


def findings(rows: dict[str, list[tuple[str, list[Run]]]], claims=CLAIMS) -> list[Finding]:
    return [check(claim, rows) for claim in claims]
