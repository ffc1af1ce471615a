"""The blind colorization Turing test without a browser: the balanced design, the study site (nothing on it
gives a method or the real side away), votes checked against the design, fooling rates with Wilson
intervals, dropped raters, the leaderboard column, and a study built from real `bench run` results."""

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
from bench.reports.example import image_names, write_result
from bench.reports.turing.design import balanced_design
from bench.reports.turing.score import score_study, wilson_interval
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


@pytest.mark.parametrize("arms, images, blocks, catch", [(3, 20, 1, 5), (3, 20, 3, 4), (4, 6, 2, 0), (1, 5, 1, 9)])
def test_balanced_design(arms, images, blocks, catch):
    names = [f"img{i}" for i in range(images)]
    design = balanced_design(arms, names, blocks=blocks, catch=catch, rng=random.Random(3))
    assert len(design) == blocks
    pairs = Counter((t.arm, t.image) for block in design for t in block if t.kind == "method")
    assert pairs == Counter({(a, n): 1 for a in range(arms) for n in names})  # every arm meets every image once
    for k, block in enumerate(design, start=1):
        methods = [t for t in block if t.kind == "method"]
        assert {t.block for t in block} == {k} and sum(t.kind == "catch" for t in block) == catch
        assert set(Counter(t.image for t in methods).values()) == {arms // blocks}  # each image M/B times
        per_arm = Counter(t.arm for t in methods)
        assert max(per_arm.values()) - min(per_arm.values()) <= 1 and len(per_arm) == arms
        for group in [[t for t in methods if t.arm == a] for a in range(arms)] + [[t for t in block if t.kind == "catch"]]:
            sides = Counter(t.real for t in group)
            assert abs(sides["left"] - sides["right"]) <= 1  # the real side: half left, half right
        assert all(t.source == t.arm for t in methods) and all(0 <= t.source < arms for t in block)
    again = balanced_design(arms, names, blocks=blocks, catch=catch, rng=random.Random(3))
    assert again == design  # the same seed, the same design
    if images * arms > 4:
        assert balanced_design(arms, names, blocks=blocks, catch=catch, rng=random.Random(4)) != design


def test_design_errors():
    with pytest.raises(BenchError, match=r"--blocks 2: must divide the number of methods \(3\): one of 1, 3"):
        balanced_design(3, ["a", "b", "c"], blocks=2, rng=random.Random(0))
    with pytest.raises(BenchError, match=r"--blocks 3: needs at least 3 images \(the study has 2\)"):
        balanced_design(3, ["a", "b"], blocks=3, rng=random.Random(0))
    with pytest.raises(BenchError, match="--catch -1"):
        balanced_design(3, ["a", "b"], catch=-1, rng=random.Random(0))


def test_study_site_gives_nothing_away(tmp_path):
    runs = make_runs(tmp_path / "runs", images=5)
    write_result(runs, "pix2pix", 0, options={"gan_mode": "lsgan"}, sample_names=image_names(5))
    write_result(runs, "unet-l2", 0, status="failed", error="diverged")  # never part of a study
    study = tmp_path / "study"
    design = build_study([runs], study, methods=["baseline", "pix2pix (gan_mode=lsgan)", "cyclegan-unpaired"],
                         images=4, catch=2, seed=1, title="Real or <b>fake</b>?")
    assert [a["label"] for a in design["arms"]] == ["baseline", "pix2pix (gan_mode=lsgan)", "cyclegan-unpaired"]  # as asked
    assert len(design["images"]) == 4 and set(design["images"]) <= set(image_names(5))
    assert len(design["trials"]) == 3 * 4 + 2 and json.loads((study / "design.json").read_text()) == design

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
    assert data["study_id"] == design["study_id"] and len(data["blocks"]) == 1
    shown = data["blocks"][0]
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
                assert shown_image.mode == "RGB" and not set(shown_image.info) - {"dpi"}


def test_build_errors(run_cli, tmp_path):
    runs = make_runs(tmp_path / "runs", images=3)
    cases = [
        (["--images", "20"], "--images 20: only 3 test images have samples in every chosen run (baseline: 3; "
         "cyclegan-unpaired: 3; pix2pix: 3); a run keeps `--samples N` of them (default 8): re-run with "
         "`bench run ... --samples 20`"),
        (["--methods", "baseline,unet-l2"], "--methods 'unet-l2': no finished run of that method under --runs; "
         "found: baseline, cyclegan-unpaired, pix2pix"),
        (["--time-limit", "-1"], "--time-limit -1.0: seconds per trial, 0 for none"),
        (["--blocks", "2"], "--blocks 2: must divide the number of methods (3): one of 1, 3"),
        (["--images", "0"], "--images 0: at least 1"),
    ]
    for extra, message in cases:
        code, _, err = run_cli("turing", "--runs", runs, "--out", tmp_path / "s", *extra)
        assert code == 2 and message in " ".join(err.split()), err
        assert not (tmp_path / "s").exists()  # nothing written on a bad input
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
    design = build_study([runs], study, catch=4, seed=2)
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
    assert by_method["baseline"]["ci95"] == pytest.approx(wilson_interval(6, 12)) and by_method["baseline"]["raters"] == 2
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
    assert "baseline 6 / 12 50.0 % 25.4–74.6 %" in text and "no: 2 of 4 catch trials right" in text


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
    labels = sorted(a["label"] for a in design["arms"])  # several boards: each label names its board
    assert [label.split(" · ")[:3] for label in labels] == [["baseline", "demo", "32px"], ["baseline", "other", "32px"],
                                                             ["pix2pix", "demo", "32px"]]
    demo = [a for a in design["arms"] if a["board"]["dataset"] == "demo"]
    votes = write_votes(study, tmp_path / "v.json", lambda t: fake(t) if t["arm"] == demo[0]["arm"] else t["real"])
    scores = score_study(study, [votes])
    site = render_site([runs], tmp_path / "site", turing=scores)
    board = {b["dataset"]: b for b in json.loads((site / "leaderboard.json").read_text())["boards"]}
    rows = {r["method"]: r for r in board["demo"]["rows"]}
    assert rows["baseline"]["fooling"] == {"fooled": 4, "votes": 4, "rate": 1.0, "ci95": wilson_interval(4, 4),
                                           "raters": 1, "seed": 0, "study_id": design["study_id"]}
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
    code, out, err = run_cli("turing", "score", study, votes, "--report", tmp_path / "site2")
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
                           "--samples", "3", "-o", "width=16", "--metrics", "psnr", "--out", runs)
    assert code == 0, err
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--size", "32", "--budget", "2steps",
                           "--samples", "3", "-o", "width=16", "-o", "lr=0.01", "--metrics", "psnr", "--out", runs)
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
