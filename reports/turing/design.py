"""What a study compares and how: its arms (one method run each), its test images, the trial design.

An *arm* is one leaderboard row (a method with its changed options, on one board): the study shows
the colorizations of its lowest seed that kept samples (``bench run --samples N`` keeps N test
images as gray/pred/truth PNGs, the same images for every method of a dataset). Only test images
with samples in every arm are used.

The design is balanced and seeded. With ``blocks`` = B (B divides the number of arms M), block b
holds the pairs (arm a, image i) with (a + i) mod B = b: over all blocks every arm meets every image
exactly once; within a block every image appears M/B times and every arm gets K/B images (±1).
B = 1 (the default) is one block with every pair; B = M gives blocks in which each rater sees each
image once (a Latin square). Each block adds ``catch`` catch trials (the real photo against the
gray input: a rater who fails them was not looking). Within each arm and among the catch trials of a
block the real side is left in half the trials and right in the other half (a random one for an odd
count), and the order of a block's trials is shuffled. Everything is drawn from ``random.Random(seed)``:
the same seed gives the same design.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.errors import BenchError
from bench.reports.cells import budget_text
from bench.reports.runs import Run, as_dict, as_int, as_list, as_text

SAMPLE_FILES = ("truth", "pred", "gray")
SIDES = ("left", "right")
DESIGN_FORMAT = "colorbench-turing-design"  # design.json
VOTES_FORMAT = "colorbench-turing-votes"  # a rater's exported answers
VERSION = 1
DESIGN_FILE = "design.json"
SITE_FOLDER = "site"


@dataclass
class Arm:
    """One method run whose colorizations a study shows."""

    label: str  # the leaderboard row's label (method and changed options), with the board when several
    run: Run
    samples: dict[str, dict]  # test image name -> its sample entry (gray, pred and truth files)

    def to_dict(self) -> dict:
        run = self.run
        return {
            "label": self.label, "method": run.method, "changed_options": run.changed_options, "seed": run.seed,
            "run_key": run.run_id, "run_dir": str(run.directory.resolve()), "path": run.path, "source": run.source,
            "board": {"dataset": run.dataset, "dataset_options": run.dataset_options, "size": run.size,
                      "budget": {k: run.budget.get(k) for k in ("kind", "value", "label")},
                      "hardware": run.hardware, "precision": run.precision},
        }


@dataclass
class Trial:
    block: int  # 1-based
    kind: str  # "method" | "catch"
    arm: int | None  # the arm whose colorization is shown (None for a catch trial: the gray input is)
    image: str  # test image name
    source: int  # the arm whose sample files are shown (for a catch trial: any arm, at random)
    real: str  # "left" | "right"


def run_samples(run: Run) -> dict[str, dict]:
    """{test image name: sample} for the samples that have all three files recorded."""
    out: dict[str, dict] = {}
    for sample in as_list(run.raw.get("samples")):
        sample = as_dict(sample)
        name = as_text(sample.get("name"))
        if name and all(as_text(sample.get(part)) for part in SAMPLE_FILES):
            out.setdefault(name, sample)
    return out


def _board_text(run: Run) -> str:
    size = f"{run.size}px" if run.size is not None else "size unknown"
    return f"{run.dataset} · {size} · {budget_text(run.budget)} · {run.hardware} · {run.precision}"


def choose_arms(runs: list[Run], methods: list[str] | None = None) -> list[Arm]:
    """One arm per leaderboard row of finished method runs (``methods``: row labels or method names)."""
    finished = [r for r in runs if not r.is_reference and r.status == "ok"]
    if not finished:
        raise BenchError("--runs: no finished method run (status ok) to show; run `bench run ... --samples N` first")
    rows: dict[tuple, list[Run]] = {}
    for run in sorted(finished, key=lambda r: (r.board_key, r.sort_key)):
        rows.setdefault((run.board_key, run.row_key), []).append(run)
    if methods:
        chosen = []
        for name in methods:
            found = [key for key, rs in rows.items() if name in (rs[0].label, rs[0].method)]
            if not found:
                known = ", ".join(dict.fromkeys(rs[0].label for rs in rows.values()))
                raise BenchError(f"--methods {name!r}: no finished run of that method under --runs; found: {known}")
            chosen += [key for key in found if key not in chosen]
        rows = {key: rows[key] for key in chosen}
    several_boards = len({board for board, _ in rows}) > 1
    arms = []
    for runs_of_row in rows.values():
        run = next((r for r in sorted(runs_of_row, key=lambda r: r.seed if r.seed is not None else -1)
                    if run_samples(r)), runs_of_row[0])
        label = f"{run.label} · {_board_text(run)}" if several_boards else run.label
        arms.append(Arm(label, run, run_samples(run)))
    return arms


def common_images(arms: list[Arm], wanted: int | None, rng: random.Random) -> list[str]:
    """The test images with samples in every arm (in test-set order); ``wanted`` of them drawn at random."""
    if wanted is not None and wanted < 1:
        raise BenchError(f"--images {wanted}: at least 1")
    first = arms[0].samples
    index = {n: as_int(sample.get("index")) for n, sample in first.items()}
    names = sorted((n for n in first if all(n in arm.samples for arm in arms[1:])),
                   key=lambda n: (index[n] is None, index[n] or 0, n))
    if len(names) < (wanted or 1):
        counts = "; ".join(f"{arm.label}: {len(arm.samples)}" for arm in arms)
        asked = f"--images {wanted}: " if wanted else ""
        raise BenchError(f"{asked}only {len(names)} test images have samples in every chosen run ({counts}); a run "
                         f"keeps `--samples N` of them (default 8): re-run with `bench run ... --samples {wanted or 20}`")
    if wanted is None:
        return names
    picked = set(rng.sample(names, wanted))
    return [n for n in names if n in picked]


def _sides(count: int, rng: random.Random) -> list[str]:
    """Half left, half right (a random one for an odd count), shuffled."""
    sides = list(SIDES) * (count // 2) + ([rng.choice(SIDES)] if count % 2 else [])
    rng.shuffle(sides)
    return sides


def check_design(n_arms: int, n_images: int, blocks: int, catch: int) -> None:
    if blocks < 1 or n_arms % blocks:
        divisors = ", ".join(str(d) for d in range(1, n_arms + 1) if n_arms % d == 0)
        raise BenchError(f"--blocks {blocks}: must divide the number of methods ({n_arms}): one of {divisors}")
    if n_images < blocks:
        raise BenchError(f"--blocks {blocks}: needs at least {blocks} images (the study has {n_images})")
    if catch < 0:
        raise BenchError(f"--catch {catch}: 0 or more catch trials per block")


def balanced_design(n_arms: int, images: list[str], *, blocks: int = 1, catch: int = 0,
                    rng: random.Random) -> list[list[Trial]]:
    """The trials of each block, in the order raters see them (see the module docstring)."""
    check_design(n_arms, len(images), blocks, catch)
    design = []
    for block in range(blocks):
        trials = []
        for arm in range(n_arms):
            mine = [i for i in range(len(images)) if (arm + i) % blocks == block]
            trials += [Trial(block + 1, "method", arm, images[i], arm, side) for i, side in zip(mine, _sides(len(mine), rng))]
        picks = rng.sample(range(len(images)), catch) if catch <= len(images) else \
            [rng.randrange(len(images)) for _ in range(catch)]
        trials += [Trial(block + 1, "catch", None, images[i], rng.randrange(n_arms), side)
                   for i, side in zip(picks, _sides(catch, rng))]
        rng.shuffle(trials)
        design.append(trials)
    return design
