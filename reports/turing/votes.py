"""Scoring a study: raters' vote files checked against design.json, fooling rates with honest intervals.

A method's *fooling rate* is the share of its trials in which the rater picked its colorization as
the real photo (50 % = indistinguishable from real photos, as Zhang et al. 2016 report it). Catch
trials (the real photo against the gray input) are not counted in it: they check the rater. A rater
who got fewer than ``min_catch`` of the catch trials they answered right (or answered none, when the
study has them) is dropped from the pooled rates, and the output says who and why.

The votes of a study are not independent: raters differ in how easily they are fooled, and images in
how convincing their colorizations are. A binomial (Wilson) interval over the pooled votes ignores
both and is too narrow. The pooled rate's 95 % interval is therefore a **two-way cluster bootstrap**
(``cluster_bootstrap_interval``): raters and test images are resampled with replacement, independently
(crossed), each vote weighted by how often its rater and its image were drawn, and the interval is the
2.5 and 97.5 percentiles of the resampled rates (``BOOTSTRAP_RESAMPLES`` resamples, seed
``BOOTSTRAP_SEED``: the same votes give the same interval). It needs at least 2 raters and 2 images
with votes on the method (None otherwise: one rater says nothing about how raters differ). Per rater,
the interval is Wilson's score interval (95 %) over that rater's votes.

Every vote is checked against the design: a file of another study, a trial the study does not have,
a trial answered twice, a trial of another block than the file's, a choice other than left/right
are refused with a one-line error naming the file.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.reports.runs import as_number, as_text
from bench.reports.turing.design import DESIGN_FILE, DESIGN_FORMAT, SIDES, VERSION, VOTES_FORMAT

DEFAULT_MIN_CATCH = 0.8
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> list[float] | None:
    """Wilson's score interval for a binomial proportion; None without trials."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
INTERVAL_METHOD = "two-way cluster bootstrap (raters x images, crossed; percentile)"


def _draw_counts(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """(resamples, n): how often each of n clusters is drawn in n draws with replacement."""
    draws = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def cluster_bootstrap_interval(fooled, votes, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                               level: float = 0.95):
    """95 % interval of the pooled rate sum(fooled) / sum(votes) from a two-way cluster bootstrap.

    ``fooled`` and ``votes`` are (raters, images) counts, or (studies, raters, images) for many studies at
    once (a list of intervals back; the simulations in the tests use it). Each resample draws the raters
    with replacement and, independently, the images with replacement; a cell counts (its rater's draws)
    x (its image's draws) times. Raters and images without votes are left out; None with fewer than 2 of
    either. Resamples that hold no vote (possible when raters judge few images) are discarded.
    """
    fooled, votes = np.asarray(fooled, dtype=np.float64), np.asarray(votes, dtype=np.float64)
    batch = votes.ndim == 3
    if not batch:
        fooled, votes = fooled[None], votes[None]
    raters, images = votes.sum(axis=(0, 2)) > 0, votes.sum(axis=(0, 1)) > 0
    fooled, votes = fooled[:, raters][:, :, images], votes[:, raters][:, :, images]
    n_raters, n_images = votes.shape[1:]
    if n_raters < 2 or n_images < 2:
        return [None] * len(votes) if batch else None
    rng = np.random.default_rng(seed)
    rater_draws, image_draws = (_draw_counts(rng, n, resamples) for n in (n_raters, n_images))
    rows, columns = np.nonzero(votes.sum(axis=0))  # the (rater, image) cells with votes
    weights = rater_draws[:, rows] * image_draws[:, columns]  # (resamples, cells)
    # einsum's own loops, not BLAS: small products, and no thread pool to fight over on a busy machine
    hits = np.einsum("sc,bc->sb", fooled[:, rows, columns], weights)
    total = np.einsum("sc,bc->sb", votes[:, rows, columns], weights)
    tail = 100 * (1 - level) / 2
    out = []
    for h, t in zip(hits, total):
        kept = t > 0
        low, high = np.percentile(h[kept] / t[kept], [tail, 100 - tail]) if kept.any() else (None, None)
        out.append(None if low is None else [float(low), float(high)])
    return out if batch else out[0]


def rate(fooled: int, votes: int) -> dict:
    return {"fooled": fooled, "votes": votes, "rate": fooled / votes if votes else None,
            "ci95": wilson_interval(fooled, votes)}


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BenchError(f"{path}: not a readable {what} ({error})") from None


def _trial_ok(trial, n_arms: int) -> bool:
    if not isinstance(trial, dict) or not isinstance(trial.get("id"), str) or trial.get("real") not in SIDES:
        return False
    if trial.get("kind") == "catch":
        return True
    arm = trial.get("arm")
    return trial.get("kind") == "method" and isinstance(arm, int) and 0 <= arm < n_arms


def load_design(study: Path) -> dict:
    """design.json of a study folder (or the file itself), checked enough to score against."""
    study = Path(study)
    path = study / DESIGN_FILE if study.is_dir() else study
    if study.is_dir() and not path.is_file():
        raise BenchError(f"{study}: no {DESIGN_FILE} here; give the folder `bench turing --out` wrote")
    design = _read_json(path, "study design (design.json)")
    if not isinstance(design, dict) or design.get("format") != DESIGN_FORMAT:
        raise BenchError(f"{path}: not a colorbench Turing-test design (no \"format\": \"{DESIGN_FORMAT}\")")
    if not isinstance(design.get("version"), int) or design["version"] > VERSION:
        raise BenchError(f"{path}: design version {design.get('version')!r}; this colorbench reads up to {VERSION}")
    trials, arms = design.get("trials"), design.get("arms")
    fields_ok = isinstance(trials, list) and isinstance(arms, list) and all(isinstance(a, dict) for a in arms) \
        and all(_trial_ok(t, len(arms)) for t in trials)
    if not fields_ok or not isinstance(design.get("study_id"), str):
        raise BenchError(f"{path}: design.json is damaged (trials, arms or study_id malformed)")
    design["_path"] = str(path)
    return design


@dataclass
class Rater:
    file: str
    rater: str
    block: int | None
    votes: list[dict]  # {trial, choice, rt_ms, timed_out}, checked
    catch_correct: int = 0
    catch_total: int = 0
    kept: bool = True
    reason: str | None = None


def read_votes(path: Path, design: dict, trials: dict[str, dict]) -> Rater:
    """One rater's exported file, every vote checked against the design."""
    data = _read_json(path, "votes file")
    if not isinstance(data, dict) or not isinstance(data.get("votes"), list):
        raise BenchError(f"{path}: not a votes file (a JSON object with a \"votes\" list, as the study page exports)")
    if data.get("format", VOTES_FORMAT) != VOTES_FORMAT:
        raise BenchError(f"{path}: format {data.get('format')!r}, expected {VOTES_FORMAT!r}")
    study_id = data.get("study_id")
    if study_id != design["study_id"]:
        raise BenchError(f"{path}: votes for study {study_id!r}, but {design['_path']} is study {design['study_id']!r}: "
                         "votes only score against the study they were made for")
    rater = as_text(data.get("rater"))
    if not rater or not rater.strip():
        raise BenchError(f"{path}: no rater name or id (\"rater\")")
    block = data.get("block")
    if block is not None and (isinstance(block, bool) or not isinstance(block, int)):
        raise BenchError(f"{path}: block {block!r} is not a block number")
    seen: dict[str, int] = {}
    votes = []
    for number, vote in enumerate(data["votes"], start=1):
        where = f"{path}: vote {number}"
        if not isinstance(vote, dict):
            raise BenchError(f"{where} is not an object with trial and choice")
        trial_id = vote.get("trial")
        trial = trials.get(trial_id) if isinstance(trial_id, str) else None
        if trial is None:
            raise BenchError(f"{where} is for trial {trial_id!r}, which this study ({design['study_id']}) does not have")
        if block is not None and trial.get("block", block) != block:
            raise BenchError(f"{where} is for trial {trial_id!r} of block {trial.get('block')}, but the file is block {block}")
        if trial_id in seen:
            raise BenchError(f"{where} answers trial {trial_id!r} again (first in vote {seen[trial_id]})")
        seen[trial_id] = number
        if vote.get("choice") not in SIDES:
            raise BenchError(f"{where}: choice {vote.get('choice')!r}, expected \"left\" or \"right\"")
        rt = vote.get("rt_ms")
        if rt is not None and (as_number(rt) is None or rt < 0):
            raise BenchError(f"{where}: rt_ms {rt!r} is not a response time in milliseconds")
        if not isinstance(vote.get("timed_out", False), bool):
            raise BenchError(f"{where}: timed_out {vote.get('timed_out')!r} is not true or false")
        votes.append({"trial": trial_id, "choice": vote["choice"], "rt_ms": as_number(rt),
                      "timed_out": vote.get("timed_out", False)})
    return Rater(str(path), rater.strip(), block, votes)


def _check_catch(rater: Rater, trials: dict[str, dict], catch_per_block: int, min_catch: float) -> None:
    catch = [v for v in rater.votes if trials[v["trial"]]["kind"] == "catch"]
    rater.catch_total = len(catch)
    rater.catch_correct = sum(v["choice"] == trials[v["trial"]]["real"] for v in catch)
    if not catch_per_block:
        return  # a study without catch trials checks nobody
    if not catch:
        rater.kept, rater.reason = False, "answered no catch trial"
    elif rater.catch_correct < min_catch * rater.catch_total - 1e-9:
        rater.kept = False
        rater.reason = f"{rater.catch_correct} of {rater.catch_total} catch trials right (< {min_catch:.0%})"


def _arm_rates(raters: list[Rater], trials: dict[str, dict], n_arms: int, clustered: bool = False) -> list[dict]:
    """Fooled / votes per arm; the interval is Wilson's, or with ``clustered`` the two-way cluster bootstrap."""
    images = {name: k for k, name in enumerate(dict.fromkeys(t["image"] for t in trials.values()
                                                              if t["kind"] == "method"))}
    fooled = np.zeros((n_arms, len(raters), len(images)), dtype=np.int64)
    votes, timed_out = np.zeros_like(fooled), [0] * n_arms
    for r, rater in enumerate(raters):
        for vote in rater.votes:
            trial = trials[vote["trial"]]
            if trial["kind"] == "method":
                cell = (trial["arm"], r, images[trial["image"]])
                votes[cell] += 1
                fooled[cell] += vote["choice"] != trial["real"]  # the colorization was picked as real
                timed_out[trial["arm"]] += bool(vote["timed_out"])
    out = []
    for k in range(n_arms):
        entry = dict(rate(int(fooled[k].sum()), int(votes[k].sum())), timed_out=timed_out[k])
        if clustered:
            entry["ci95"] = cluster_bootstrap_interval(fooled[k], votes[k])
        out.append(entry)
    return out


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def score_study(study: Path, vote_files: list[Path], *, min_catch: float = DEFAULT_MIN_CATCH) -> dict:
    """Fooling rates per arm, pooled over the raters kept, and per rater (see the module docstring)."""
    if not (0.0 <= min_catch <= 1.0):
        raise BenchError(f"--min-catch {min_catch}: a share between 0 and 1 (e.g. 0.8)")
    design = load_design(study)
    if not vote_files:
        raise BenchError("no votes files given: pass the JSON files the raters exported")
    trials = {t["id"]: t for t in design["trials"]}
    raters: list[Rater] = []
    for path in dict.fromkeys(Path(p).resolve() for p in vote_files):  # a file matched twice counts once
        rater = read_votes(path, design, trials)
        twin = next((r for r in raters if r.rater == rater.rater), None)
        if twin is not None:
            raise BenchError(f"{path}: rater {rater.rater!r} is also in {twin.file}: one file per rater")
        _check_catch(rater, trials, design.get("catch_per_block", 0), min_catch)
        raters.append(rater)
    kept = [r for r in raters if r.kept]
    arms = design["arms"]
    pooled = _arm_rates(kept, trials, len(arms), clustered=True)
    catch_votes = [(v, trials[v["trial"]]) for r in kept for v in r.votes if trials[v["trial"]]["kind"] == "catch"]
    catch_right = sum(v["choice"] == t["real"] for v, t in catch_votes)
    return {
        "study_id": design["study_id"], "design": design["_path"], "runs_dirs": design.get("runs_dirs", []),
        "min_catch": min_catch,
        "interval": {"pooled": INTERVAL_METHOD, "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED,
                     "per_rater": "Wilson score"},
        "catch_per_block": design.get("catch_per_block", 0), "time_limit_s": design.get("time_limit_s", 0),
        "raters_total": len(raters), "raters_kept": len(kept), "raters_dropped": len(raters) - len(kept),
        "arms": [{"arm": k, "label": arm.get("label"), "method": arm.get("method"), "seed": arm.get("seed"),
                  "run_key": arm.get("run_key"), "run_dir": arm.get("run_dir"),
                  "raters": sum(any(trials[v["trial"]].get("arm") == k for v in r.votes) for r in kept), **pooled[k]}
                 for k, arm in enumerate(arms)],
        "catch": {"correct": catch_right, "votes": len(catch_votes),
                  "rate": catch_right / len(catch_votes) if catch_votes else None},
        "raters": [{
            "file": r.file, "rater": r.rater, "block": r.block, "votes": len(r.votes), "kept": r.kept, "reason": r.reason,
            "catch": {"correct": r.catch_correct, "total": r.catch_total},
            "timed_out": sum(bool(v["timed_out"]) for v in r.votes),
            "median_rt_ms": _median([v["rt_ms"] for v in r.votes if v["rt_ms"] is not None]),
            "arms": _arm_rates([r], trials, len(arms)),
        } for r in raters],
    }


# -- the leaderboard column ---------------------------------------------------------------------------
@dataclass
class Fooling:
    """A leaderboard row's fooling rate, from the study arm that showed one of its runs."""

    fooled: int
    votes: int
    rate: float | None
    ci95: list[float] | None
    raters: int
    seed: int | None  # the seed whose colorizations were shown
    study_id: str

    @property
    def text(self) -> str:
        return "—" if self.rate is None else f"{100 * self.rate:.1f} %"

    @property
    def interval_text(self) -> str:
        return f"CI {100 * self.ci95[0]:.1f}–{100 * self.ci95[1]:.1f} %" if self.ci95 else ""

    @property
    def sort_value(self) -> str:
        return repr(self.rate) if self.rate is not None else ""

    def to_dict(self) -> dict:
        return {"fooled": self.fooled, "votes": self.votes, "rate": self.rate, "ci95": self.ci95,
                "raters": self.raters, "seed": self.seed, "study_id": self.study_id}


def attach_fooling(boards: list, scores: dict) -> None:
    """Give each leaderboard row that holds a study arm's run its fooling rate, and the board a note.

    A run matches an arm by its run_key when both have one, else by its folder.
    """
    by_key = {arm["run_key"]: arm for arm in scores["arms"] if arm.get("run_key")}
    by_dir = {arm["run_dir"]: arm for arm in scores["arms"] if arm.get("run_dir")}

    def arm_of(run):
        if run.run_id and run.run_id in by_key:
            return by_key[run.run_id]
        arm = by_dir.get(str(run.directory.resolve()))
        if arm and arm.get("run_key") and run.run_id:
            return None  # the folder now holds another run than the one the study showed
        return arm

    for board in boards:
        covered = 0
        for row in board.method_rows:
            arm = next(filter(None, map(arm_of, row.runs)), None)
            if arm is not None:
                row.fooling = Fooling(arm["fooled"], arm["votes"], arm["rate"], arm["ci95"], arm["raters"],
                                      arm.get("seed"), scores["study_id"])
                covered += 1
        if covered:
            board.notes.append(
                f"fooling rate: blind Turing test (study {scores['study_id']}), {scores['raters_kept']} of "
                f"{scores['raters_total']} raters kept ({catch_text(scores)}): the share of trials where raters picked "
                "the method's colorization as the real photo (the colorizations of one seed, named in the cell when the "
                "row has several); 50 % = indistinguishable; 95 % interval from a two-way cluster bootstrap over raters "
                "and images (none with fewer than 2 of either); N = votes; not part of the ranking.")


def catch_text(scores: dict) -> str:
    """How the catch trials filtered the raters, in a few words."""
    if not scores["catch_per_block"]:
        return "no catch trials in this study: nobody checked"
    need = f"{scores['min_catch']:.0%} of the catch trials right needed"
    dropped = scores["raters_dropped"]
    return f"{dropped} dropped, {need}" if dropped else f"none dropped, {need}"
