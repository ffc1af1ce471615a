"""The blind colorization Turing test without a browser: the balanced design (by default a Latin square: no
rater judges a photo twice), the study site (nothing on it gives a method or the real side away, not even
the files' sizes), votes checked against the design, fooling rates with two-way cluster-bootstrap intervals
(a simulation with rater and image effects checks their coverage against the pooled Wilson interval's),
dropped raters, the leaderboard column, and a study built from real `bench run` results."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import binomtest

from bench.errors import BenchError
from bench.reports import render_site
from tests.report_example import image_names, write_result
from bench.reports.turing.design import balanced_design
from bench.reports.turing.votes import Z95, cluster_bootstrap_interval, score_study, wilson_interval
from bench.reports.turing.study import build_study

METHODS = ("baseline", "pix2pix", "cyclegan-unpaired")


def make_runs(runs: Path, images: int = 6, methods=METHODS, **options) -> Path:
    for method in methods:
        write_result(runs, method, 0, sample_names=image_names(images), **options)
    return runs


def page_data(study: Path) -> dict:
    text = (study / "site" / "trials.js").read_text()
    found = re.search(r"^window\.COLORBENCH_TURING = (\{.*\});\s*$", text, re.S | re.M)
    assert found, text[:300]
    return json.loads(found.group(1))


def write_votes(study: Path, path: Path, choose, rater: str = "r1", block: int = 1, **changes) -> Path:
    """A votes file as the page exports it: ``choose(trial)`` -> "left" | "right" for every trial of the block."""
    design = json.loads((study / "design.json").read_text())
    trials = [t for t in design["trials"] if t["block"] == block]
    data = {"format": "colorbench-turing-votes", "version": 1, "study_id": design["study_id"], "rater": rater,
            "block": block, "started": "2025-01-01T00:00:00Z", "finished": "2025-01-01T00:05:00Z",
            "time_limit_s": 0, "votes": [{"trial": t["id"], "choice": choose(t), "rt_ms": 800 + k, "timed_out": False}
                                         for k, t in enumerate(trials)]}
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def fake(trial: dict) -> str:
    return "right" if trial["real"] == "left" else "left"


def _check_catch_trials(block, images_in_block: set[str], catch: int, free: int) -> None:
    """Catch trials: ``catch`` of them; none shows a photo before the rater judged it; distinct when possible."""
    caught = [t for t in block if t.kind == "catch"]
    assert len(caught) == catch
    judged = set()
    for trial in block:
        if trial.kind == "method":
            judged.add(trial.image)
        else:
            assert trial.image not in images_in_block or trial.image in judged, "a catch trial previews a photo"
    if catch <= free + len(images_in_block):
        assert len({t.image for t in caught}) == catch  # a photo of its own for each


@pytest.mark.parametrize("arms, images, blocks, catch, repeats", [
    (3, 20, None, 5, False), (3, 20, 3, 4, False), (5, 24, None, 5, False), (4, 6, None, 0, False),
    (1, 5, None, 9, False), (3, 2, None, 1, False), (3, 10, 4, 3, False), (3, 20, 1, 5, True), (4, 6, 2, 0, True)])
def test_balanced_design(arms, images, blocks, catch, repeats):
    names = [f"img{i}" for i in range(images)]
    design = balanced_design(arms, names, blocks=blocks, catch=catch, rng=random.Random(3), allow_repeats=repeats)
    blocks = blocks or arms  # the default: one block per method
    assert len(design) == blocks
    pairs = Counter((t.arm, t.image) for block in design for t in block if t.kind == "method")
    assert pairs == Counter({(a, n): 1 for a in range(arms) for n in names})  # every arm meets every image once
    for k, block in enumerate(design, start=1):
        methods = [t for t in block if t.kind == "method"]
        assert {t.block for t in block} == {k}
        judged = Counter(t.image for t in methods)
        if repeats:
            assert set(judged.values()) == {arms // blocks}  # each image M/B times: learnable, asked for
        else:
            assert set(judged.values()) == {1}  # no rater judges a photo twice
            if blocks == arms:
                assert set(judged) == set(names)  # the Latin square: every image once, each with another method
        per_arm = Counter(t.arm for t in methods)
        assert max(per_arm.values()) - min(per_arm.values() if len(per_arm) == arms else [0]) <= 1
        for group in [[t for t in methods if t.arm == a] for a in range(arms)] + [[t for t in block if t.kind == "catch"]]:
            sides = Counter(t.real for t in group)
            assert abs(sides["left"] - sides["right"]) <= 1  # the real side: half left, half right
        assert all(t.source == t.arm for t in methods) and all(0 <= t.source < arms for t in block)
        _check_catch_trials(block, set(judged), catch, images - len(judged))
    again = balanced_design(arms, names, blocks=blocks, catch=catch, rng=random.Random(3), allow_repeats=repeats)
    assert again == design  # the same seed, the same design
    if images * arms > 4:
        assert balanced_design(arms, names, blocks=blocks, catch=catch, rng=random.Random(4),
                               allow_repeats=repeats) != design


def test_photo_views_per_rater_before_and_after():
    """The audit's session (5 methods x 24 images, 5 catch trials): one block showed each photo 5-6 times."""
    names = [f"img{i}" for i in range(24)]
    before = balanced_design(5, names, blocks=1, catch=5, rng=random.Random(0), allow_repeats=True)
    assert len(before) == 1 and len(before[0]) == 125
    views = Counter(t.image for t in before[0])
    assert (min(views.values()), max(views.values())) == (5, 6)
    after = balanced_design(5, names, catch=5, rng=random.Random(0))
    assert [len(block) for block in after] == [29] * 5
    for block in after:
        assert set(Counter(t.image for t in block if t.kind == "method").values()) == {1}
        views = Counter(t.image for t in block)
        assert max(views.values()) == 2 and sum(v == 2 for v in views.values()) == 5  # the 5 catch photos, after
    spare = [f"extra{i}" for i in range(5)]  # photos outside the study: catch trials use them, nothing is seen twice
    for block in balanced_design(5, names, catch=5, rng=random.Random(0), spare=spare):
        assert set(Counter(t.image for t in block).values()) == {1}
        assert {t.image for t in block if t.kind == "catch"} == set(spare)


def test_design_errors():
    with pytest.raises(BenchError, match=r"--blocks 1: a rater would judge each photo up to 3 times \(with 3 methods\) "
                       r"and can learn which one is real; use --blocks 3 or more .* or add --allow-repeats"):
        balanced_design(3, ["a", "b", "c"], blocks=1, rng=random.Random(0))
    with pytest.raises(BenchError, match=r"--blocks 2: with repeats, must divide the number of methods \(3\): one of 1, "
                       r"or 3 or more"):
        balanced_design(3, ["a", "b", "c"], blocks=2, rng=random.Random(0), allow_repeats=True)
    with pytest.raises(BenchError, match=r"--blocks 4: needs at least 4 images \(the study has 2\)"):
        balanced_design(3, ["a", "b"], blocks=4, rng=random.Random(0))
    with pytest.raises(BenchError, match=r"--blocks 0: at least 1"):
        balanced_design(3, ["a", "b"], blocks=0, rng=random.Random(0))
    with pytest.raises(BenchError, match="--catch -1"):
        balanced_design(3, ["a", "b"], catch=-1, rng=random.Random(0))


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        chunks.append(data[at + 4:at + 8])
        at += 12 + length
    return chunks


def test_study_site_gives_nothing_away(tmp_path):
    runs = make_runs(tmp_path / "runs", images=5)
    write_result(runs, "pix2pix", 0, options={"gan_mode": "lsgan"}, sample_names=image_names(5))
    write_result(runs, "unet-l2", 0, status="failed", error="diverged")  # never part of a study
    study = tmp_path / "study"
    design = build_study([runs], study, methods=["baseline", "pix2pix (gan_mode=lsgan)", "cyclegan-unpaired"],
                         images=4, catch=2, seed=1, title="Real or <b>fake</b>?")
    assert [a["label"] for a in design["arms"]] == ["baseline", "pix2pix (gan_mode=lsgan)", "cyclegan-unpaired"]  # as asked
    assert len(design["images"]) == 4 and set(design["images"]) <= set(image_names(5))
    assert design["blocks"] == 3 and not design["allow_repeats"]  # the default: a Latin square
    assert len(design["trials"]) == 3 * 4 + 3 * 2 and json.loads((study / "design.json").read_text()) == design
    spare = (set(image_names(5)) - set(design["images"])).pop()  # not in the study: the catch trials show it first
    for block in (1, 2, 3):
        trials = [t for t in design["trials"] if t["block"] == block]
        assert sorted(t["image"] for t in trials if t["kind"] == "method") == sorted(design["images"])
        assert spare in [t["image"] for t in trials if t["kind"] == "catch"]

    site = study / "site"
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert files[-4:] == ["index.html", "static/turing.css", "static/turing.js", "trials.js"]
    pictures = [f for f in files if f.startswith("img/")]
    assert len(pictures) == 2 * len(design["trials"]) and all(re.fullmatch(r"img/[0-9a-f]{16}\.png", f) for f in pictures)
    secrets = [*METHODS, "lsgan", "gan_mode", "pred", "truth", "gray", design["arms"][0]["run_key"], *image_names(5),
               str(runs)]
    for name in files:
        text = (site / name).read_bytes().decode("latin-1")
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{name} gives away {leaked}"
    page = (site / "index.html").read_text()
    assert "Real or &lt;b&gt;fake&lt;/b&gt;?" in page and "<b>fake" not in page
    assert "script-src 'self'" in page and "<script>" not in page  # no inline script (CSP)
    assert '<script src="trials.js" defer></script>' in page

    data = page_data(study)
    assert data["study_id"] == design["study_id"] and len(data["blocks"]) == 3
    shown = [t for block in data["blocks"] for t in block]
    assert [t["id"] for t in shown] == [t["id"] for t in design["trials"]]
    assert all(set(t) == {"id", "left", "right"} for t in shown)
    assert {t["real"] for t in design["trials"]} == {"left", "right"}
    arms = design["arms"]
    for trial in design["trials"]:  # each side shows what the key says, pixel for pixel, without metadata
        sample = next(s for s in json.loads((Path(arms[trial["source_arm"]]["run_dir"]) / "result.json").read_text())[
            "samples"] if s["name"] == trial["image"])
        other = "gray" if trial["kind"] == "catch" else "pred"
        fake_side = "right" if trial["real"] == "left" else "left"
        for side, part in ((trial["real"], "truth"), (fake_side, other)):
            with Image.open(site / trial[side]) as shown_image, \
                    Image.open(Path(arms[trial["source_arm"]]["run_dir"]) / sample[part]) as source:
                assert np.array_equal(np.asarray(shown_image), np.asarray(source.convert("RGB")))
                assert shown_image.mode == "RGB" and not shown_image.info
    for picture in pictures:  # nothing but the pixels: no text, time, physical size or colour-space chunk
        assert png_chunks((site / picture).read_bytes()) == [b"IHDR", b"IDAT", b"IEND"]


def test_the_pictures_of_a_trial_have_equal_sizes(tmp_path):
    """Compressed, a colorization (smoother) is a smaller file than the real photo, and the developer tools
    show every file's size: the site stores both uncompressed, so every trial's two files are equally long."""
    runs = make_runs(tmp_path / "runs", images=6)
    rng = np.random.default_rng(0)
    truths = sorted(runs.rglob("*.truth.png"))
    for path in truths:  # real photos with texture; the colorizations stay smooth ramps
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    study = tmp_path / "study"
    design = build_study([runs], study, catch=3, seed=5)
    site = study / "site"
    compressed = []
    for trial in design["trials"]:
        sizes = {side: (site / trial[side]).stat().st_size for side in ("left", "right")}
        assert sizes["left"] == sizes["right"], trial
        with Image.open(site / trial["left"]) as left, Image.open(site / trial["right"]) as right:
            packed = {}
            for side, image in (("left", left), ("right", right)):
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")  # what the site used to serve
                packed[side] = buffer.tell()
        compressed.append(packed[trial["real"]] > packed["right" if trial["real"] == "left" else "left"])
    assert all(compressed)  # compressed, the larger file would have been the real photo in every trial
    assert len({p.stat().st_size for p in (site / "img").iterdir()}) == 1  # one size: 16 x (1 + 3 x 16) + 69 bytes
    assert (next((site / "img").iterdir())).stat().st_size == 16 * (1 + 3 * 16) + 68


def test_build_errors(run_cli, tmp_path):
    runs = make_runs(tmp_path / "runs", images=3)
    cases = [
        (["--images", "20"], "--images 20: only 3 test images have samples in every chosen run (baseline: 3; "
         "cyclegan-unpaired: 3; pix2pix: 3); a run keeps `--samples N` of them (default 8): re-run with "
         "`bench run ... --samples 20`"),
        (["--methods", "baseline,unet-l2"], "--methods 'unet-l2': no finished run of that method under --runs; "
         "found: baseline, cyclegan-unpaired, pix2pix"),
        (["--time-limit", "-1"], "--time-limit -1.0: seconds per trial, 0 for none"),
        (["--blocks", "2"], "--blocks 2: a rater would judge each photo up to 2 times (with 3 methods) and can learn "
         "which one is real; use --blocks 3 or more (the default, 3, shows each rater each image once), or add "
         "--allow-repeats"),
        (["--blocks", "2", "--allow-repeats"], "--blocks 2: with repeats, must divide the number of methods (3): one "
         "of 1, or 3 or more"),
        (["--images", "0"], "--images 0: at least 1"),
    ]
    for extra, message in cases:
        code, _, err = run_cli("turing", "--runs", runs, "--out", tmp_path / "s", *extra)
        assert code == 2 and message in " ".join(err.split()), err
        assert not (tmp_path / "s").exists()  # nothing written on a bad input
    code, out, err = run_cli("turing", "--runs", runs, "--out", tmp_path / "repeats", "--blocks", "1", "--allow-repeats",
                             "--catch", "1", "--json")  # asked for: one block, each photo judged once per method
    assert code == 0 and (json.loads(out)["blocks"], json.loads(out)["allow_repeats"], json.loads(out)["trials"]) == (
        1, True, 3 * 3 + 1), err
    code, out, err = run_cli("turing", "--runs", runs, "--out", tmp_path / "default", "--catch", "1")
    assert code == 0 and "no rater judges a photo twice" in out and "3 blocks of 4 trials" in out, out
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    code, _, err = run_cli("turing", "--runs", runs, "--out", tmp_path / "busy")
    assert code == 2 and "is not empty: a study goes to a new folder" in err
    write_result(tmp_path / "other", "baseline", 0, sample_names=["elsewhere"])
    write_result(tmp_path / "other", "pix2pix", 0, sample_names=["another"])
    code, _, err = run_cli("turing", "--runs", tmp_path / "other", "--out", tmp_path / "s2")
    assert code == 2 and "only 0 test images have samples in every chosen run" in err
    code, _, err = run_cli("turing", "--runs", tmp_path / "nothing", "--out", tmp_path / "s3")
    assert code == 2 and "does not exist" in err
    next(runs.rglob("*.pred.png")).unlink()  # a sample file gone: said, and nothing written
    code, _, err = run_cli("turing", "--runs", runs, "--out", tmp_path / "s4")
    assert code == 2 and ".pred.png' is missing, not a PNG or outside the run folder" in err
    assert not (tmp_path / "s4").exists()


def test_fooling_rates_wilson_and_catch_trials(run_cli, tmp_path):
    assert wilson_interval(0, 0) is None
    for k, n in ((0, 10), (5, 10), (10, 10), (12, 40), (1, 1), (299, 1000)):  # scipy's Wilson interval agrees
        expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx([expected.low, expected.high], abs=1e-12)
    runs = make_runs(tmp_path / "runs", images=6)
    study = tmp_path / "study"
    design = build_study([runs], study, catch=4, seed=2, blocks=1, allow_repeats=True)  # one block: every trial
    arm = {a["method"]: a["arm"] for a in design["arms"]}
    always = arm["baseline"]  # fooled every time by baseline, never by the others; all catch trials right
    careful = write_votes(study, tmp_path / "careful.json", lambda t: fake(t) if t["arm"] == always else t["real"])
    # a second good rater: fooled by pix2pix only
    second = write_votes(study, tmp_path / "second.json", lambda t: fake(t) if t["arm"] == arm["pix2pix"] else t["real"],
                         rater="r2")
    careless = write_votes(study, tmp_path / "careless.json", lambda t: "left", rater="r3")  # catch: 2 of 4 right
    scores = score_study(study, [careful, second, careless, careful])  # a file named twice counts once
    assert (scores["raters_total"], scores["raters_kept"], scores["raters_dropped"]) == (3, 2, 1)
    by_method = {a["method"]: a for a in scores["arms"]}
    assert (by_method["baseline"]["fooled"], by_method["baseline"]["votes"]) == (6, 12)
    assert (by_method["pix2pix"]["fooled"], by_method["pix2pix"]["votes"]) == (6, 12)
    assert (by_method["cyclegan-unpaired"]["fooled"], by_method["cyclegan-unpaired"]["rate"]) == (0, 0.0)
    # two raters who disagree completely: the interval spans everything (pooled Wilson said 25-75 %)
    assert by_method["baseline"]["ci95"] == [0.0, 1.0] and by_method["baseline"]["raters"] == 2
    assert by_method["cyclegan-unpaired"]["ci95"] == [0.0, 0.0]
    assert scores["interval"]["pooled"].startswith("two-way cluster bootstrap") and scores["interval"]["resamples"] == 2000
    assert scores["catch"] == {"correct": 8, "votes": 8, "rate": 1.0}
    raters = {r["rater"]: r for r in scores["raters"]}
    assert raters["r3"]["reason"] == "2 of 4 catch trials right (< 80%)" and not raters["r3"]["kept"]
    assert raters["r1"]["arms"][always] == {"fooled": 6, "votes": 6, "rate": 1.0, "ci95": wilson_interval(6, 6),
                                            "timed_out": 0}
    assert raters["r1"]["median_rt_ms"] == pytest.approx(800 + (len(design["trials"]) - 1) / 2)
    # with no catch requirement the careless rater counts: always "left" = fooled whenever the real side is right
    lenient = score_study(study, [careful, second, careless], min_catch=0)
    assert lenient["raters_kept"] == 3
    right_side = Counter(t["arm"] for t in design["trials"] if t["kind"] == "method" and t["real"] == "right")
    assert lenient["arms"][always]["fooled"] == 6 + right_side[always]

    code, out, err = run_cli("turing", "score", study, careful, second, careless, "--json")
    assert code == 0, err
    assert {k: v for k, v in json.loads(out).items()} == json.loads(json.dumps(scores))
    code, out, err = run_cli("turing", "score", study / "design.json", careful, second, careless)
    assert code == 0, err
    text = " ".join(out.replace("│", " ").split())
    assert "2 of 3 raters kept (1 dropped, 80% of the catch trials right needed)" in text
    assert "baseline 6 / 12 50.0 % 0.0–100.0 %" in text and "no: 2 of 4 catch trials right" in text


def test_cluster_bootstrap_interval():
    rng = np.random.default_rng(1)
    votes = (rng.random((5, 4)) < 0.7).astype(int)
    votes[0, 0] = votes[1, 1] = 1
    fooled = votes * (rng.random(votes.shape) < 0.4)
    got = cluster_bootstrap_interval(fooled, votes, resamples=300, seed=3)
    # the same resamples, written out: raters drawn with replacement, then images, a cell counted for each pair
    draws = np.random.default_rng(3)
    rater_picks, image_picks = draws.integers(0, 5, (300, 5)), draws.integers(0, 4, (300, 4))
    rates = []
    for raters, images in zip(rater_picks, image_picks):
        hits = sum(fooled[r, i] for r in raters for i in images)
        total = sum(votes[r, i] for r in raters for i in images)
        if total:
            rates.append(hits / total)
    assert got == pytest.approx(list(np.percentile(rates, [2.5, 97.5])), abs=1e-12)
    assert cluster_bootstrap_interval(fooled, votes, resamples=300, seed=3) == got  # seeded
    assert 0 <= got[0] <= fooled.sum() / votes.sum() <= got[1] <= 1
    assert cluster_bootstrap_interval(fooled[:1], votes[:1]) is None  # one rater: no estimate of how raters differ
    assert cluster_bootstrap_interval(fooled[:, :1], votes[:, :1]) is None
    padded = np.zeros((7, 6), dtype=int)  # raters and images without votes play no part
    padded_fooled = padded.copy()
    padded[1:6, 2:6], padded_fooled[1:6, 2:6] = votes, fooled
    assert cluster_bootstrap_interval(padded_fooled, padded, resamples=300, seed=3) == got
    batch = cluster_bootstrap_interval(np.stack([fooled, votes - fooled]), np.stack([votes, votes]), resamples=300, seed=3)
    assert batch[0] == got and batch[1] == pytest.approx([1 - got[1], 1 - got[0]])


def test_cluster_bootstrap_covers_where_pooled_wilson_does_not():
    """Simulated Latin-square studies (3 methods x 24 images, 8 raters per block: 192 votes per method) with a
    rater effect and an image effect: logit P(fooled) = mu + u_rater + v_image, u, v ~ N(0, 0.8^2). The true
    rate is E[expit(mu + u + v)]. The bootstrap interval must cover it in >= 93 % of the studies; the pooled
    Wilson interval, which takes the 192 votes as independent, covers it far less often."""
    studies, n_images, per_block, spread, mu = 1000, 24, 8, 0.8, -0.5
    rng = np.random.default_rng(2024)
    block_of_rater = np.repeat(np.arange(3), per_block)
    votes = (np.arange(n_images)[None, :] % 3 == block_of_rater[:, None]).astype(int)  # method 0's trials
    x, w = np.polynomial.hermite_e.hermegauss(60)
    truth = float(w @ (1 / (1 + np.exp(-(mu + np.hypot(spread, spread) * x))))) / w.sum()
    logit = mu + rng.normal(0, spread, (studies, len(votes), 1)) + rng.normal(0, spread, (studies, 1, n_images))
    fooled = (rng.random(logit.shape) < 1 / (1 + np.exp(-logit))) * votes
    boot = np.array(cluster_bootstrap_interval(fooled, np.broadcast_to(votes, fooled.shape)))
    n, rate = votes.sum(), fooled.sum(axis=(1, 2)) / votes.sum()  # Wilson's interval, vectorised
    centre = (rate + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * np.sqrt(rate * (1 - rate) / n + Z95 ** 2 / (4 * n * n)) / (1 + Z95 ** 2 / n)
    assert wilson_interval(int(fooled[0].sum()), n) == pytest.approx([centre[0] - half[0], centre[0] + half[0]])
    covered_boot = np.mean((boot[:, 0] <= truth) & (truth <= boot[:, 1]))
    covered_wilson = np.mean((centre - half <= truth) & (truth <= centre + half))
    print(f"true rate {truth:.3f}: bootstrap covers {covered_boot:.1%} (mean width {np.mean(boot[:, 1] - boot[:, 0]):.3f}),"
          f" pooled Wilson {covered_wilson:.1%} (mean width {np.mean(2 * half):.3f})")
    assert covered_boot >= 0.93
    assert covered_wilson <= 0.88 and covered_boot - covered_wilson >= 0.1


def test_latin_square_study_scores_with_clustered_intervals(tmp_path):
    runs = make_runs(tmp_path / "runs", images=6)
    study = tmp_path / "study"
    design = build_study([runs], study, catch=2, seed=4)
    assert design["blocks"] == 3
    arm = {a["method"]: a["arm"] for a in design["arms"]}
    files, expected = [], np.zeros((3, 6, 6), dtype=int)  # (arm, rater, image): fooled
    images = {name: k for k, name in enumerate(design["images"])}
    for r in range(6):  # two raters per block; rater r is fooled by baseline on images up to r
        def choose(trial, r=r):
            if trial["kind"] == "method" and trial["arm"] == arm["baseline"] and images[trial["image"]] <= r:
                expected[trial["arm"], r, images[trial["image"]]] = 1
                return fake(trial)
            return trial["real"]
        files.append(write_votes(study, tmp_path / f"v{r}.json", choose, rater=f"r{r}", block=r % 3 + 1))
    scores = score_study(study, files)
    baseline = scores["arms"][arm["baseline"]]
    assert (baseline["votes"], baseline["raters"]) == (12, 6)  # each rater judged each image once: 6 x 6 / 3
    votes = np.zeros((6, 6), dtype=int)
    for r in range(6):
        for t in design["trials"]:
            if t["block"] == r % 3 + 1 and t["kind"] == "method" and t["arm"] == arm["baseline"]:
                votes[r, images[t["image"]]] = 1
    assert baseline["fooled"] == expected[arm["baseline"]].sum()
    assert baseline["ci95"] == cluster_bootstrap_interval(expected[arm["baseline"]], votes)
    assert baseline["ci95"][0] < baseline["rate"] < baseline["ci95"][1]
    assert score_study(study, files)["arms"] == scores["arms"]  # seeded: the same votes, the same intervals
    assert score_study(study, files[:1])["arms"][arm["baseline"]]["ci95"] is None  # one rater: no interval
    rater = next(r for r in scores["raters"] if r["rater"] == "r5")  # per rater: Wilson
    mine = rater["arms"][arm["baseline"]]
    assert mine["ci95"] == wilson_interval(mine["fooled"], mine["votes"])


def test_votes_are_checked_against_the_design(run_cli, tmp_path):
    runs = make_runs(tmp_path / "runs", images=3)
    study = tmp_path / "study"
    build_study([runs], study, catch=1, blocks=3)
    good = write_votes(study, tmp_path / "good.json", lambda t: t["real"])
    other = tmp_path / "other"
    build_study([runs], other, catch=1)
    first = json.loads(good.read_text())["votes"][0]
    trial_ids = {t["id"]: t["block"] for t in json.loads((study / "design.json").read_text())["trials"]}
    block2 = next(i for i, b in trial_ids.items() if b == 2)
    cases = {
        "foreign.json": (write_votes(other, tmp_path / "foreign.json", lambda t: t["real"]), "votes for study"),
        "unknown.json": (dict(votes=[dict(first, trial="nope")]),
                         "vote 1 is for trial 'nope', which this study"),
        "twice.json": (dict(votes=[first, first]), "vote 2 answers trial"),
        "choice.json": (dict(votes=[dict(first, choice="up")]), "vote 1: choice 'up', expected \"left\" or \"right\""),
        "block.json": (dict(votes=[dict(first, trial=block2)]), "of block 2, but the file is block 1"),
        "rt.json": (dict(votes=[dict(first, rt_ms="fast")]), "rt_ms 'fast' is not a response time"),
        "rater.json": (dict(rater=" "), "no rater name or id"),
        "shape.json": (dict(votes="all"), "not a votes file"),
    }
    for name, (change, message) in cases.items():
        path = change if isinstance(change, Path) else write_votes(study, tmp_path / name, lambda t: t["real"], **change)
        code, _, err = run_cli("turing", "score", study, path)
        assert code == 2 and message in err and name in err, (name, err)
        assert len(err.strip().splitlines()) == 1
    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = run_cli("turing", "score", study, tmp_path / "broken.json")
    assert code == 2 and "broken.json: not a readable votes file" in err
    same_rater = write_votes(study, tmp_path / "again.json", lambda t: t["real"])
    code, _, err = run_cli("turing", "score", study, good, same_rater)
    assert code == 2 and "rater 'r1' is also in" in err
    code, _, err = run_cli("turing", "score", tmp_path / "runs", good)
    assert code == 2 and "no design.json here" in err
    code, _, err = run_cli("turing", "score", study, good, "--min-catch", "80")
    assert code == 2 and "--min-catch 80.0: a share between 0 and 1" in err


def test_leaderboard_fooling_rate_column(run_cli, tmp_path):
    runs = make_runs(tmp_path / "runs", images=4)
    write_result(runs, "baseline", 1, sample_names=image_names(4))  # a second seed: the study shows seed 0
    write_result(runs, "baseline", 0, dataset="other", sample_names=image_names(4))  # a board the study does not cover
    study = tmp_path / "study"
    design = build_study([runs], study, catch=2, methods=["baseline", "pix2pix"])
    assert design["blocks"] == 3
    labels = sorted(a["label"] for a in design["arms"])  # several boards: each label names its board
    assert [label.split(" · ")[:3] for label in labels] == [["baseline", "demo", "32px"], ["baseline", "other", "32px"],
                                                             ["pix2pix", "demo", "32px"]]
    demo = [a for a in design["arms"] if a["board"]["dataset"] == "demo"]
    everyone = [write_votes(study, tmp_path / f"v{b}.json", lambda t: fake(t) if t["arm"] == demo[0]["arm"] else t["real"],
                            rater=f"r{b}", block=b) for b in (1, 2, 3)]  # one rater per block
    scores = score_study(study, everyone)
    site = render_site([runs], tmp_path / "site", turing=scores)
    board = {b["dataset"]: b for b in json.loads((site / "leaderboard.json").read_text())["boards"]}
    rows = {r["method"]: r for r in board["demo"]["rows"]}
    assert rows["baseline"]["fooling"] == {"fooled": 4, "votes": 4, "rate": 1.0, "ci95": [1.0, 1.0],
                                           "raters": 3, "seed": 0, "study_id": design["study_id"]}
    assert rows["pix2pix"]["fooling"]["rate"] == 0.0 and rows["cyclegan-unpaired"]["fooling"] is None
    assert board["other"]["rows"][0]["fooling"]["votes"] == 4
    assert any("fooling rate: blind Turing test" in note for note in board["demo"]["notes"])
    index = (site / "index.html").read_text()
    assert index.count(">fooling rate</button>") == 2
    assert "100.0 %" in index and "N = 4 votes, seed 0" in index  # baseline has two seeds: the one shown is named
    lines = list(csv.DictReader(io.StringIO((site / "leaderboard.csv").read_text())))
    baseline = next(line for line in lines if line["method"] == "baseline" and line["dataset"] == "demo")
    assert (baseline["fooling_rate"], baseline["fooling_votes"], baseline["fooling_seed"]) == ("1.0", "4", "0")
    plain = render_site([runs], tmp_path / "plain")
    assert "fooling" not in (plain / "index.html").read_text() and "fooling" not in (plain / "leaderboard.csv").read_text()
    # the CLI: --report renders the leaderboard from the runs the design names
    code, out, err = run_cli("turing", "score", study, *everyone, "--report", tmp_path / "site2")
    assert code == 0, err
    assert out.strip().endswith("index.html") and ">fooling rate</button>" in (tmp_path / "site2" / "index.html").read_text()


def test_old_results_match_by_folder(tmp_path):
    runs = tmp_path / "runs"
    for method in ("baseline", "pix2pix"):
        write_result(runs, method, 0, sample_names=image_names(2), schema=1)  # no run_key
    study = tmp_path / "study"
    build_study([runs], study, catch=0)
    votes = write_votes(study, tmp_path / "v.json", fake)
    site = render_site([runs], tmp_path / "site", turing=score_study(study, [votes]))
    rows = json.loads((site / "leaderboard.json").read_text())["boards"][0]["rows"]
    assert [(r["method"], r["fooling"]["rate"]) for r in rows if r["kind"] == "method"] == [("baseline", 1.0),
                                                                                              ("pix2pix", 1.0)]


def test_study_from_real_runs(run_cli, tmp_path):
    runs, study = tmp_path / "runs", tmp_path / "study"
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--size", "32", "--budget", "2steps",
                           "--samples", "3", "-o", "width=16", "--metrics", "psnr", "--seeds", "1", "--out", runs)
    assert code == 0, err
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--size", "32", "--budget", "2steps",
                           "--samples", "3", "-o", "width=16", "-o", "lr=0.01", "--metrics", "psnr", "--seeds", "1", "--out", runs)
    assert code == 0, err
    code, out, err = run_cli("turing", "--runs", runs, "--out", study, "--catch", "1", "--blocks", "2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert sorted(a["label"] for a in summary["arms"]) == ["baseline (lr=0.01, width=16)", "baseline (width=16)"]
    assert len(summary["images"]) == 3 and summary["trials"] == 2 * 3 + 2 * 1 and summary["blocks"] == 2
    data = page_data(study)
    assert [len(block) for block in data["blocks"]] == [sum(t["block"] == b for t in json.loads(
        (study / "design.json").read_text())["trials"]) for b in (1, 2)]
    votes = [write_votes(study, tmp_path / f"b{b}.json", lambda t: t["real"] if t["kind"] == "catch" else fake(t),
                         rater=f"r{b}", block=b) for b in (1, 2)]
    code, out, err = run_cli("turing", "score", study, *votes, "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert [(a["fooled"], a["votes"], a["raters"]) for a in scores["arms"]] == [(3, 3, 2), (3, 3, 2)]


def test_damaged_design_is_refused(run_cli, tmp_path):
    runs = make_runs(tmp_path / "runs", images=2)
    study = tmp_path / "study"
    build_study([runs], study, catch=0)
    votes = write_votes(study, tmp_path / "v.json", fake)
    design = json.loads((study / "design.json").read_text())
    for change, message in ((dict(format="other"), "not a colorbench Turing-test design"),
                            (dict(version=99), "design version 99; this colorbench reads up to 1"),
                            (dict(trials=[dict(design["trials"][0], arm=7)]), "design.json is damaged")):
        (study / "design.json").write_text(json.dumps(design | change))
        code, _, err = run_cli("turing", "score", study, votes)
        assert code == 2 and message in err, err
