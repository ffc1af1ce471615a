"""What a study compares and how: its arms (one method run each), its test images, the trial design.

An *arm* is one leaderboard row (a method with its changed options, on one board): the study shows
the colorizations of its lowest seed that kept samples (``bench run --samples N`` keeps N test
images as gray/pred/truth PNGs, the same images for every method of a dataset). Only test images
with samples in every arm are used.

The design is balanced and seeded. With ``blocks`` = B, block b holds the pairs (arm a, image i) with
(a + i) mod B = b: over all blocks every arm meets every image exactly once, and within a block every
arm gets K/B images (±1). Each block is one rater's session. The default, B = M (the number of arms),
is a Latin square: each rater judges every image exactly once, each with another method, and raters
spread evenly over the blocks see every method with every image equally often. Any B >= M keeps "each
image at most once per block" (smaller sessions, for many images). B < M (B dividing M) shows each
image M/B times to the same rater, who can learn the real photo: it is refused unless
``allow_repeats``.

Each block adds ``catch`` catch trials (the real photo against the gray input: a rater who fails them
was not looking). A catch trial never shows a photo before the rater has judged it: it uses a test
image with no method trial in the block (one not in the block, or a ``spare`` image outside the study)
when there is one, and otherwise an image whose method trial comes earlier in the block (it is placed
after it). Within each arm and among the catch trials of a block the real side is left in half the
trials and right in the other half (a random one for an odd count), and the order of a block's trials
is shuffled. Everything is drawn from ``random.Random(seed)``: the same seed gives the same design.
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


def default_blocks(n_arms: int) -> int:
    """One block per arm: a Latin square (each rater judges each image once)."""
    return max(1, n_arms)


def check_design(n_arms: int, n_images: int, blocks: int, catch: int, allow_repeats: bool = False) -> None:
    if blocks < 1:
        raise BenchError(f"--blocks {blocks}: at least 1 (default: the number of methods, {n_arms})")
    if blocks < n_arms:
        divisors = [d for d in range(1, n_arms) if n_arms % d == 0]
        if not allow_repeats:
            raise BenchError(f"--blocks {blocks}: a rater would judge each photo up to {-(-n_arms // blocks)} times "
                             f"(with {n_arms} methods) and can learn which one is real; use --blocks {n_arms} or more "
                             f"(the default, {n_arms}, shows each rater each image once), or add --allow-repeats")
        if n_arms % blocks:
            raise BenchError(f"--blocks {blocks}: with repeats, must divide the number of methods ({n_arms}): one of "
                             f"{', '.join(map(str, divisors))}, or {n_arms} or more")
    if blocks != n_arms and n_images < blocks:  # (one block per method works with any number of images)
        raise BenchError(f"--blocks {blocks}: needs at least {blocks} images (the study has {n_images})")
    if catch < 0:
        raise BenchError(f"--catch {catch}: 0 or more catch trials per block")


def _with_catch(method: list[Trial], block: int, images: list[str], spare: list[str], n_arms: int, catch: int,
                rng: random.Random) -> list[Trial]:
    """The block's shuffled method trials with ``catch`` catch trials put in; none previews a photo."""
    first: dict[str, int] = {}
    for position, trial in enumerate(method):
        first.setdefault(trial.image, position)
    free = [n for n in images if n not in first] + list(spare)  # photos this block's method trials never show
    picks = rng.sample(free, min(catch, len(free)))
    slots = [(rng.randrange(len(method) + 1), name) for name in picks]  # free photos: anywhere
    used = set(picks)
    if not method:  # nothing judged in this block (not possible with check_design's rules): every photo is free
        return [Trial(block, "catch", None, name, rng.randrange(n_arms), side)
                for (_, name), side in zip(slots, _sides(len(slots), rng))]
    later, gaps = catch - len(picks), range(1, len(method) + 1)
    # distinct gaps, sorted: the k-th comes after >= k judged photos, so each can show a photo of its own
    for gap in sorted(rng.sample(gaps, later) if later <= len(gaps) else [rng.choice(gaps) for _ in range(later)]):
        seen = [n for n in images if first.get(n, len(method)) < gap]  # judged before this point (>= 1 of them)
        fresh = [n for n in seen if n not in used]
        name = rng.choice(fresh or seen)
        used.add(name)
        slots.append((gap, name))
    rng.shuffle(slots)
    slots.sort(key=lambda slot: slot[0])  # stable: ties stay in random order
    sides = _sides(len(slots), rng)
    trials, k = [], 0
    for position in range(len(method) + 1):
        while k < len(slots) and slots[k][0] == position:
            trials.append(Trial(block, "catch", None, slots[k][1], rng.randrange(n_arms), sides[k]))
            k += 1
        if position < len(method):
            trials.append(method[position])
    return trials


def balanced_design(n_arms: int, images: list[str], *, blocks: int | None = None, catch: int = 0,
                    rng: random.Random, allow_repeats: bool = False, spare: list[str] | None = None
                    ) -> list[list[Trial]]:
    """The trials of each block, in the order raters see them (see the module docstring).

    ``blocks``: None for the default (one per arm); ``spare``: test images outside the study that catch
    trials may show (they have the gray input and the real photo in every arm).
    """
    blocks = default_blocks(n_arms) if blocks is None else blocks
    check_design(n_arms, len(images), blocks, catch, allow_repeats)
    design = []
    for block in range(blocks):
        method = []
        for arm in range(n_arms):
            mine = [i for i in range(len(images)) if (arm + i) % blocks == block]
            method += [Trial(block + 1, "method", arm, images[i], arm, side) for i, side in zip(mine, _sides(len(mine), rng))]
        rng.shuffle(method)
        design.append(_with_catch(method, block + 1, images, sorted(spare or []), n_arms, catch, rng))
    return design
