"""The HTML leaderboard site: ranking with ties, reference rows, verdicts, findings, boards, failures,
escaping, byte-stability, merging, bad inputs."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from bench.errors import BenchError
from bench.reports import render_site
from bench.reports.charts import loss_charts
from tests.report_example import TEST_IMAGES, example_runs, write_reference, write_result
from bench.reports.runs import normalise
from bench.stats import compare_means, mean_interval

EVIL = "<script>alert(1)</script>"
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


class Tables(HTMLParser):
    """Every <table>: its class and rows of cells {text, class, sort, title}; every img src."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.scripts, self._cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"class": attrs.get("class", ""), "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = {"text": "", "class": attrs.get("class", ""), "sort": attrs.get("data-sort-value"),
                          "title": attrs.get("title")}
            self.tables[-1]["rows"][-1].append(self._cell)
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "script":
            self.scripts.append(attrs)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def parse(path: Path) -> Tables:
    parser = Tables()
    parser.feed(path.read_text())
    return parser


def table(site: Path, kind: str = "leaderboard", index: int = 0) -> tuple[list[str], list[list[dict]]]:
    """(header words, body rows) of the index's ``index``-th table of class ``kind``."""
    found = [t for t in parse(site / "index.html").tables if kind in t["class"].split()][index]
    return [" ".join(c["text"].split()[:2]) if c["text"].startswith("vs") else c["text"].split()[0]
            for c in found["rows"][0]], found["rows"][1:]


def cell(row: list[dict], columns: list[str], name: str) -> dict:
    return row[columns.index(name)]


def results(runs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(runs.rglob("result.json"))]


def result_of(runs: Path, method: str, seed=0, options=None) -> dict:
    return next(r for r in results(runs) if r["method"] == method and r["seed"] == seed
                and r.get("changed_options", {}) == (options or {}))


def boards_of(site: Path) -> list[dict]:
    return json.loads((site / "leaderboard.json").read_text())["boards"]


def rows_of(board: dict) -> dict[str, dict]:
    return {r["label"]: r for r in board["rows"]}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    runs = example_runs(tmp_path_factory.mktemp("example") / "runs")
    site = render_site([runs], tmp_path_factory.mktemp("example") / "site", verdicts=["psnr"])
    return runs, site, boards_of(site)[0]


def test_ranking_reference_rows_and_vs_gray(example):
    runs, site, board = example
    columns, rows = table(site)
    labels = [cell(r, columns, "method")["text"].split()[0] for r in rows]
    assert labels == ["ground", "pix2pix", "pix2pix", "unet-l2", "baseline", "cyclegan-paired", "cyclegan-unpaired",
                      "gray", "pix2pix-resnet18-scratch", "pix2pix-resnet18"]  # references where their lpips falls
    assert board["rank_by"] == "lpips" and "Ranked by <strong>lpips ↓</strong>" in (site / "index.html").read_text()
    by_label = rows_of(board)
    gray, truth = by_label["gray input"], by_label["ground truth"]
    assert gray["kind"] == truth["kind"] == "reference" and gray["rank"] is None and truth["rank"] is None
    assert [cell(r, columns, "#")["text"].strip() for r in rows if "reference" in cell(r, columns, "#")["class"]] == [
        "ref", "ref"]
    gray_result = next(r for r in results(runs) if r.get("reference") == "gray")
    assert gray["metrics"]["lpips"]["mean"] == gray_result["metrics"]["lpips"]  # scored like a method, not ranked
    assert truth["metrics"]["psnr"] == {"status": "ok", "mean": None, "infinite": True, "ci95": None, "std": None,
                                        "n_seeds": 1, "best": False}
    assert cell(rows[0], columns, "psnr")["text"].strip().startswith("∞") and cell(rows[0], columns, "psnr")["sort"] == "Infinity"
    assert not truth["metrics"]["lpips"]["best"] and by_label["pix2pix"]["metrics"]["lpips"]["best"]  # refs never best
    ranked = [r for r in board["rows"] if r["rank"] is not None]
    assert [r["rank"] for r in ranked] == sorted(r["rank"] for r in ranked) and ranked[0]["label"] == "pix2pix"
    family = len(ranked) * (len(ranked) - 1) // 2 + len(ranked)  # every pair, and each method vs gray
    for row in ranked:  # vs gray: over the method's seeds and the paired images, gray being fixed
        seeds = [result_of(runs, row["method"], s, row["changed_options"]) for s in row["seeds_ok"]]
        expected = compare_means([r["per_image"]["lpips"] for r in seeds], gray_result["per_image"]["lpips"],
                                 fixed_b=True, tests=family)
        assert row["vs_gray"]["ci95"] == expected["ci95"] and row["vs_gray"]["tests"] == family
        if len(seeds) == 1:
            assert row["vs_gray"]["mark"] == "needs seeds" and expected["needs_seeds"] == ["a"]
        else:
            lo, hi = expected["ci95"]
            assert row["vs_gray"]["mark"] == ("better" if hi < 0 else "worse" if lo > 0 else "tied")
    gray_cells = [cell(r, columns, "vs gray")["text"] for r in rows]
    assert gray_cells[1].startswith("≈ tied") and gray_cells[2].startswith("? needs seeds") and gray_cells[0].strip() == "—"
    marks = {r["label"]: r["vs_gray"]["mark"] for r in ranked}
    assert marks["cyclegan-unpaired"] == "tied" and "better" not in marks.values()  # 3 seeds, 21 comparisons: wide
    for row_html, row in zip(rows, board["rows"]):  # seeds merged: mean, sd, interval over seeds and images
        seeds = [result_of(runs, row["method"], s, row["changed_options"]) for s in row["seeds_ok"]]
        values = [r["metrics"]["ssim"] for r in seeds]
        entry = row["metrics"].get("ssim", {})
        if not values:
            continue
        assert entry["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert float(cell(row_html, columns, "ssim")["sort"]) == entry["mean"]
        if len(values) > 1:
            assert entry["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)
            assert entry["ci95"] == mean_interval([r["per_image"]["ssim"] for r in seeds])["ci95"]
            fid = [[r["metrics"]["fid"]] for r in seeds]  # set-level: the t interval of the per-seed values
            assert row["metrics"]["fid"]["ci95"] == mean_interval(fid)["ci95"]
    with_csv = list(csv.DictReader(io.StringIO((site / "leaderboard.csv").read_text())))
    assert [(r["kind"], r["method"], r["rank"]) for r in with_csv] == [
        (r["kind"], r["method"], "" if r["rank"] is None else str(r["rank"])) for r in board["rows"]]
    assert with_csv[0]["psnr_mean"] == "inf" and with_csv[1]["vs_gray"] == "tied"
    assert {r["rank_by"] for r in with_csv} == {"lpips"} and {r["hardware"] for r in with_csv} == {"CPU: example x1"}


def tie_board(tmp_path, **names) -> Path:
    """lpips per image, 3 seeds each: a; b = a + small symmetric noise (tied with a); c clearly worse; gray
    worse still; one seed of d (needs seeds)."""
    runs = tmp_path / "runs"
    base = np.linspace(0.1, 0.3, TEST_IMAGES)
    noise = np.tile([0.004, -0.004], TEST_IMAGES // 2)
    for method, values in (("a", base), ("b", base + noise), ("c", base + 0.1)):
        for seed, shift in enumerate((0.002, -0.002, 0.0)):  # training runs differ a little
            write_result(runs, method, seed, metrics={"lpips": list(values + shift), "psnr": 20.0 + seed})
    write_reference(runs, "gray", metrics={"lpips": list(base + 0.3), "psnr": 18.0})
    write_result(runs, "other-images", 0, metrics={"lpips": list(base + 0.2)},  # ranked by its mean: last
                 per_image={"names": [f"x{i}" for i in range(TEST_IMAGES)], "lpips": list(base + 0.2)})
    return render_site([runs], tmp_path / "site", **names)


def test_tied_methods_share_a_rank(tmp_path):
    site = tie_board(tmp_path)
    board = boards_of(site)[0]
    rows = rows_of(board)
    assert [rows[m]["rank"] for m in ("a", "b", "c", "other-images")] == [1, 1, 3, 4]
    assert rows["a"]["tied_with"] == ["b"] and rows["b"]["tied_with"] == ["a"] and rows["c"]["tied_with"] == []
    pairs = {(c["left"], c["right"]): c for c in board["verdicts"]["lpips"]}
    assert pairs["a", "b"]["verdict"] == "tied" and pairs["a", "c"]["verdict"] == "distinguishable"
    assert pairs["a", "c"]["better"] == "a" and pairs["a", "c"]["text"].startswith("a vs c: lpips −0.1 [−0.109, −0.0909]")
    assert {c["tests"] for c in board["verdicts"]["lpips"]} == {6 + 4}  # one family: 6 pairs and 4 vs gray
    odd = next(c for c in board["verdicts"]["lpips"] if "other-images" in (c["left"], c["right"]))
    assert odd["verdict"] == "not comparable" and odd["reason"] == "different test images"
    assert rows["other-images"]["vs_gray"]["reason"] == "different test images"
    columns, html_rows = table(site)
    ranks = {cell(r, columns, "method")["text"].split()[0]: cell(r, columns, "#") for r in html_rows}
    assert ranks["a"]["text"].split() == ["1tied"] and ranks["c"]["text"].split() == ["3"]
    index = (site / "index.html").read_text()
    assert 'title="not distinguishable from: b">tied</span>' in index
    assert "not comparable (different test images)" in index and "could not be compared (ranked by their means)" in index
    verdicts = list(csv.DictReader(io.StringIO((site / "verdicts.csv").read_text())))
    assert {(v["left"], v["right"], v["verdict"]) for v in verdicts} >= {("a", "b", "tied"), ("a", "c", "distinguishable")}


def test_findings_are_checked_on_the_data(tmp_path):
    runs = tmp_path / "runs"
    base = np.linspace(10.0, 30.0, TEST_IMAGES)
    wiggle = np.tile([1.0, -1.0], TEST_IMAGES // 2)
    shifts = (0.1, -0.1, 0.0)  # three seeds each
    cases = {  # dataset: (baseline colourfulness, pix2pix colourfulness); pix2pix also beats baseline on LPIPS
        "supported": (base, base + 8), "contradicted": (base + 8, base), "undecided": (base + wiggle, base - wiggle)}
    for dataset, (l2, gan) in cases.items():
        for seed, shift in enumerate(shifts):
            write_result(runs, "baseline", seed, dataset=dataset,
                         metrics={"colourfulness": list(l2 + shift), "lpips": list(base / 50 + shift / 100)})
            write_result(runs, "pix2pix", seed, dataset=dataset,
                         metrics={"colourfulness": list(gan - shift), "lpips": list(base / 60 - shift / 100)})
    write_result(runs, "baseline", 0, dataset="one-seed", metrics={"colourfulness": list(base), "lpips": list(base / 50)})
    write_result(runs, "pix2pix", 0, dataset="one-seed", metrics={"colourfulness": list(base + 8), "lpips": list(base / 60)})
    site = render_site([runs], tmp_path / "site")
    found = {b["dataset"]: {f["claim"]: f for f in b["findings"]} for b in boards_of(site)}
    duller, beat, unpaired = ("L2 regression is duller than the GAN methods", "The GAN methods beat L2 regression on LPIPS",
                              "Unpaired CycleGAN is more colourful than paired CycleGAN")
    assert {d: f[duller]["verdict"] for d, f in found.items()} == {  # symmetric: contradicted needs what supported needs
        "supported": "supported", "contradicted": "contradicted", "undecided": "undecided", "one-seed": "undecided"}
    for dataset, (l2, gan) in cases.items():
        deciding = found[dataset][duller]["deciding"]
        assert [(c["left"], c["right"]) for c in deciding] == [("baseline", "pix2pix")]
        expected = compare_means([l2 + shift for shift in shifts], [gan - shift for shift in shifts])
        assert deciding[0]["ci95"] == expected["ci95"] and deciding[0]["tests"] == 1  # the interval that decides it
        assert found[dataset][beat]["verdict"] == "supported"
        assert found[dataset][unpaired]["verdict"] == "not testable on this board"
        assert found[dataset][duller]["absent_methods"] == ["unet-l2", "pix2pix-resnet18", "pix2pix-resnet18-scratch",
                                                            "cyclegan-paired", "cyclegan-unpaired"]
    assert found["one-seed"][beat]["deciding"][0]["verdict"] == "needs seeds"  # one seed never decides a claim
    index = (site / "index.html").read_text()
    assert "baseline vs pix2pix: colourfulness −8 [" in index and "not testable on this board" in index
    lines = list(csv.DictReader(io.StringIO((site / "findings.csv").read_text())))
    assert {(line["dataset"], line["verdict"]) for line in lines if line["claim"] == duller} == {
        ("supported", "supported"), ("contradicted", "contradicted"), ("undecided", "undecided"), ("one-seed", "undecided")}


def test_failed_diverged_interrupted_and_unavailable_are_shown_never_ranked(example, tmp_path):
    _, site, board = example
    index = (site / "index.html").read_text()
    columns, rows = table(site)
    statuses = {cell(r, columns, "method")["text"].split()[0]: cell(r, columns, "status")["text"] for r in rows}
    assert statuses["pix2pix-resnet18-scratch"].startswith("failed") and "diverged: non-finite G_L1 at step 57" in \
        statuses["pix2pix-resnet18-scratch"]
    assert statuses["pix2pix-resnet18"].startswith("skipped") and "ResNet18 weights not found" in statuses["pix2pix-resnet18"]
    assert "seed 3 interrupted: interrupted by the user" in statuses["unet-l2"]
    diverged = rows_of(board)["pix2pix-resnet18-scratch"]
    assert diverged["rank"] is None and diverged["metrics"] == {} or all(
        m["mean"] is None for m in diverged["metrics"].values())
    assert all("scratch" not in c["left"] + c["right"] for pairs in board["verdicts"].values() for c in pairs)
    assert "Traceback (most recent call last)" in (site / diverged["page"]).read_text()
    kid = cell(rows[1], columns, "kid")
    assert "unavailable" in kid["text"] and "Inception weights not found" in kid["title"]
    assert "kid unavailable: Inception weights not found" in index and "N=12 &lt; 2048" in index
    runs = tmp_path / "runs"
    write_result(runs, "baseline", 0, metrics={"lpips": 0.2})
    write_result(runs, "pix2pix", 0, status="interrupted", error="interrupted at step 3")
    rows = rows_of(boards_of(render_site([runs], tmp_path / "site"))[0])
    assert rows["pix2pix"]["status"] == "interrupted" and rows["pix2pix"]["rank"] is None
    assert "interrupted at step 3" in rows["pix2pix"]["reason"]


def test_boards_split_by_hardware_and_precision_rows_by_options(tmp_path):
    runs = tmp_path / "runs"
    h100 = ("NVIDIA H100 80GB HBM3", 1)
    for seed in (0, 1):
        write_result(runs, "pix2pix", seed, hardware=h100, metrics={"lpips": 0.2})
    write_result(runs, "pix2pix", 0, hardware=h100, options={"gan_mode": "lsgan"}, metrics={"lpips": 0.21})
    write_result(runs, "pix2pix", 0, hardware=h100, precision="bf16", metrics={"lpips": 0.2})
    write_result(runs, "pix2pix", 0, hardware=("NVIDIA H100 80GB HBM3", 2), metrics={"lpips": 0.2})
    write_result(runs, "pix2pix", 0, metrics={"lpips": 0.3})  # CPU
    write_result(runs, "pix2pix", 0, size=64, metrics={"lpips": 0.3})
    write_reference(runs, "gray", metrics={"lpips": 0.4})  # 32 px: every 32 px board, not the 64 px one
    site = render_site([runs], tmp_path / "site")
    boards = boards_of(site)
    assert [(b["size"], b["hardware"], b["precision"]) for b in boards] == [
        (32, "CPU: example x1", "fp32"), (32, "NVIDIA H100 80GB HBM3 x1", "bf16"), (32, "NVIDIA H100 80GB HBM3 x1", "fp32"),
        (32, "NVIDIA H100 80GB HBM3 x2", "fp32"), (64, "CPU: example x1", "fp32")]
    assert [sum(r["kind"] == "reference" for r in b["rows"]) for b in boards] == [1, 1, 1, 1, 0]
    main = rows_of(boards[2])
    assert sorted(main) == ["gray input", "pix2pix", "pix2pix (gan_mode=lsgan)"]
    assert main["pix2pix"]["seeds"] == [0, 1] and main["pix2pix (gan_mode=lsgan)"]["changed_options"] == {"gan_mode": "lsgan"}
    assert main["pix2pix"]["method_plugin"] == "example 0.1"
    index = (site / "index.html").read_text()
    assert "budget 20steps (20 steps) · NVIDIA H100 80GB HBM3 x1 · bf16" in index and ">gan_mode=lsgan<" in index
    assert len({b["id"] for b in boards}) == 5 and all(f'href="#{b["id"]}"' in index for b in boards)
    assert "example 0.1" in (site / main["pix2pix (gan_mode=lsgan)"]["page"]).read_text()


def test_demo_banner_and_flags(example, tmp_path):
    _, site, board = example
    assert board["demo"] is True and board["demo_reasons"] == ["synthetic example data (made-up numbers)"]
    assert "Demo — not a benchmark result." in (site / "index.html").read_text()
    assert {line["demo"] for line in csv.DictReader(io.StringIO((site / "leaderboard.csv").read_text()))} == {
        "synthetic example data (made-up numbers)"}
    runs = tmp_path / "runs"
    write_result(runs, "baseline", 0, metrics={"lpips": 0.2})
    write_result(runs, "baseline", 0, dataset="smoke", demo="smoke preset (30 steps)", metrics={"lpips": 0.2})
    plain = render_site([runs], tmp_path / "site")
    boards = {b["dataset"]: b for b in boards_of(plain)}
    assert boards["demo"]["demo"] is False and boards["smoke"]["demo_reasons"] == ["smoke preset (30 steps)"]
    assert (plain / "index.html").read_text().count("Demo — not a benchmark result.") == 1


def test_rank_by_verdicts_and_their_errors(run_cli, example, tmp_path):
    runs, site, board = example
    assert "psnr" in board["verdicts"] and "pairs distinguishable" in (site / "index.html").read_text()
    code, _, err = run_cli("report", "--runs", runs, "--out", tmp_path / "s1", "--rank-by", "psnr")
    assert code == 0, err
    psnr = boards_of(tmp_path / "s1")[0]
    assert psnr["rank_by"] == "psnr" and psnr["rows"][0]["label"] == "ground truth"  # ∞ sits on top, unranked
    code, _, err = run_cli("report", "--runs", runs, "--out", tmp_path / "s2", "--rank-by", "colourfulness")
    assert code == 2 and "--rank-by 'colourfulness': is descriptive" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("report", "--runs", runs, "--out", tmp_path / "s2", "--rank-by", "lpipz")
    assert code == 2 and "--rank-by 'lpipz': is not a known metric; choose one with a direction:" in err and "lpips" in err
    code, _, err = run_cli("report", "--runs", runs, "--out", tmp_path / "s2", "--verdicts", "psnr,nope")
    assert code == 2 and "--verdicts nope: not a metric" in err
    code, _, err = run_cli("report", "--runs", runs, "--out", tmp_path / "s2", "--verdicts", ",")
    assert code == 2 and "--verdicts" in err


def test_real_run_renders_and_falls_back_without_lpips(run_cli, tmp_path):
    runs, site = tmp_path / "runs", tmp_path / "site"
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--size", "32",
                           "--budget", "2steps", "--samples", "2", "-o", "width=16", "--seeds", "1", "--out", runs)
    assert code == 0, err
    code, out, err = run_cli("report", "--runs", runs, "--out", site)
    assert code == 0, err and out.strip().endswith("index.html")
    result = json.loads(next((runs / "sample" / "baseline").rglob("result.json")).read_text())
    board = boards_of(site)[0]
    assert sorted(r["reference"] or "" for r in board["rows"]) == ["", "gray", "truth"]  # written by bench run
    board["rows"] = [r for r in board["rows"] if not r["reference"]]
    assert board["rank_by"] == "psnr" and board["rank_note"].startswith("lpips has no values on this board (lpips")
    assert board["hardware"] == f"{result['environment']['device']} x1" and board["precision"] == "fp32"
    psnr = board["rows"][0]["metrics"]["psnr"]
    assert psnr["mean"] == result["metrics"]["psnr"] and psnr["ci95"] == result["metric_details"]["psnr"]["ci95"]
    index = (site / "index.html").read_text()
    assert "so it is ranked by psnr instead" in index and "No gray-input reference result" not in index
    images = parse(site / "index.html").images
    assert len(images) == 2 * 3 and all((site / i["src"]).is_file() for i in images)  # gray, baseline, truth
    page = (site / board["rows"][0]["page"]).read_text()
    assert "<polyline" in page and "colorbench (built-in), colorbench" in page
    env = result["environment"]
    for fact in (env["git_commit"], env["torch"], env["device"], result["data"]["info"]["split"], "2steps", "seeds"):
        assert str(fact) in index.replace("&#39;", "'").replace("&#34;", '"')


def test_user_strings_are_escaped_and_file_names_safe(tmp_path):
    runs = tmp_path / "runs"
    quoted = "a \"quoted\" 'name' & more"
    write_result(runs, EVIL, 0, dataset=EVIL, metrics={"psnr": 20.0, EVIL: 1.0}, losses=(EVIL,),
                 sample_names=[quoted, EVIL], config={"note": EVIL}, options={EVIL: EVIL}, method_plugin=EVIL)
    write_result(runs, "other", 0, dataset=EVIL, status="failed", error=EVIL)
    write_reference(runs, "gray", dataset=EVIL, metrics={"psnr": 18.0})
    site = render_site([runs], tmp_path / "site")
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 4
    for page in pages:
        text = page.read_text()
        assert "<script>alert" not in text and "alert(1)</script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert [s["src"].rsplit("/", 1)[-1] for s in parse(page).scripts] == ["sort.js"]  # no other script
        assert "Content-Security-Policy" in text
    method_page = next(p for p in pages if p.name not in ("index.html", "other.html", "gray_input.html"))
    text = method_page.read_text()
    assert "<text" in text and "&lt;script&gt;" in text.split("<svg", 1)[1]  # the loss name in the SVG
    assert any(quoted in i["alt"] for i in parse(method_page).images) and "&#34;quoted&#34;" in text
    for path in site.rglob("*"):
        assert re.fullmatch(r"[A-Za-z0-9._+/-]+", path.relative_to(site).as_posix()), path


def test_same_runs_render_the_same_bytes_except_the_date(example, tmp_path, monkeypatch):
    runs = example[0]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    first = render_site([runs], tmp_path / "first")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    second = render_site([runs], tmp_path / "second")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    differing = []
    for name in files:
        a, b = (first / name).read_bytes(), (second / name).read_bytes()
        if a != b:
            differing.append(str(name))
            assert a.replace(b"1970-01-01T00:00:00+00:00", b"DATE") == b.replace(b"1970-01-02T00:00:00+00:00", b"DATE")
    assert "index.html" in differing and "leaderboard.json" in differing  # the date is there, and only it differs
    for name in files:
        if name.suffix in (".html", ".json", ".csv"):
            text = (first / name).read_text()
            assert str(tmp_path) not in text and str(runs) not in text and "/tmp" not in text  # no local paths
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert DATE.fullmatch(json.loads((render_site([runs], tmp_path / "third") / "leaderboard.json").read_text())["generated"])


def test_merging_folders_later_folder_wins_and_old_results_render(tmp_path):
    a, b = tmp_path / "machine-a" / "runs", tmp_path / "machine-b" / "runs"
    write_result(a, "baseline", 0, metrics={"psnr": 20.0})
    write_result(a, "cyclegan", 0, metrics={"psnr": 18.0})
    write_reference(a, "gray", metrics={"psnr": 15.0})
    write_result(b, "baseline", 0, metrics={"psnr": 25.0})
    write_result(b, "pix2pix", 0, metrics={"psnr": 22.0})
    write_reference(b, "gray", metrics={"psnr": 16.0})
    write_result(b, "old", 0, metrics={"psnr": 21.0}, schema=1)  # schema 1: no identity, hardware, precision
    board = boards_of(render_site([a, b], tmp_path / "site"))
    assert len(board) == 1  # the old result lands on the same board: environment.device x1, fp32
    rows = rows_of(board[0])
    assert sorted(rows) == ["baseline", "cyclegan", "gray input", "old", "pix2pix"]
    assert rows["baseline"]["metrics"]["psnr"]["mean"] == result_of(b, "baseline")["metrics"]["psnr"]
    assert rows["gray input"]["metrics"]["psnr"]["mean"] == result_of(b, "gray input", None)["metrics"]["psnr"]
    assert rows["old"]["changed_options"] == {} and rows["old"]["kind"] == "method"
    notes = board[0]["notes"]
    assert len(notes) == 2 and notes[0].startswith("baseline seed 0: runs/demo/baseline/") and "replaced by runs#2/" in notes[0]
    assert notes[1].startswith("gray input: runs/demo/_reference/") and notes[1].endswith("later --runs folders win")
    reverse = rows_of(boards_of(render_site([b, a], tmp_path / "reverse"))[0])
    assert reverse["baseline"]["metrics"]["psnr"]["mean"] == result_of(a, "baseline")["metrics"]["psnr"]
    again = boards_of(render_site([a, a], tmp_path / "again"))[0]
    assert again["notes"] == [] and len(again["rows"]) == 3  # the same folder twice is read once


def test_bad_inputs_give_one_line_errors(run_cli, tmp_path):
    code, _, err = run_cli("report", "--runs", tmp_path / "nope", "--out", tmp_path / "site")
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("report", "--runs", tmp_path / "empty", "--out", tmp_path / "site")
    assert code == 2 and "no result.json" in err
    runs = tmp_path / "runs"
    folder = write_result(runs, "baseline", 0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    code, _, err = run_cli("report", "--runs", runs, "--out", tmp_path / "busy")
    assert code == 2 and "not empty" in err and (tmp_path / "busy" / "notes.txt").exists()
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("report", "--runs", runs, "--out", tmp_path / "file")
    assert code == 2 and "is a file" in err
    site = render_site([runs], tmp_path / "site")
    (site / "img" / "stale.png").write_bytes(b"old")
    render_site([runs], site)  # a re-render replaces what it wrote before
    assert not (site / "img" / "stale.png").exists() and (site / "index.html").is_file()
    (folder / "result.json").write_text("{not json")
    with pytest.raises(BenchError, match="all 1 are damaged"):  # the only run: nothing left to render
        render_site([runs], site)


def test_odd_and_partial_results_render(tmp_path):
    runs = tmp_path / "runs"
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"secret" * 10)
    (runs / "minimal").mkdir(parents=True)
    (runs / "minimal" / "result.json").write_text(json.dumps({"method": "minimal", "dataset": "demo"}))
    odd = write_result(runs / "odd", "odd", 0, metrics={"psnr": 21.0}, identity="??", changed_options=[1],
                 metric_details={"psnr": {"status": "ok", "value": float("nan")}, "ssim": "??"},
                 samples=[{"name": "x", "index": 0, "gray": "../../../../secret.png", "pred": "samples/none.png",
                           "truth": 7}, "not a sample"],
                 history={"step": [1, 2, 3, 4, 5], "losses": {"L1": [1.0, None, 0.5, "x", 0.2], "flat": [1, 1]}})
    patched = json.loads((odd / "result.json").read_text()) | {"hardware": None, "precision": 5, "kind": "?"}
    (odd / "result.json").write_text(json.dumps(patched))
    write_result(runs / "old", "old", 0, metrics={"psnr": 21.0}, metric_details=None, timings=None, environment=[],
                 schema=1)
    write_result(runs / "status", "weird", 0, status="exploded", metrics={"psnr": 1.0})
    write_reference(runs / "ref", "truth", metrics={"psnr": "inf"}, per_image="??")
    site = render_site([runs], tmp_path / "site")
    boards = boards_of(site)
    assert [b["size"] for b in boards][0] is None  # the minimal result has no size nor budget
    rows = {r["method"]: r for b in boards for r in b["rows"]}
    assert rows["old"]["metrics"]["psnr"]["mean"] == result_of(runs / "old", "old")["metrics"]["psnr"]
    assert rows["odd"]["metrics"]["psnr"]["status"] == "failed"  # NaN is no value
    assert rows["weird"]["status"] == "failed" and "unknown status 'exploded'" in rows["weird"]["reason"]
    assert rows["minimal"]["status"] == "failed"
    assert secret.read_bytes() not in [p.read_bytes() for p in site.rglob("*.png")]  # no files from outside a run


def test_loss_charts_geometry():
    def run(history, seed=0):
        return normalise({"method": "m", "dataset": "d", "seed": seed, "history": history, "_dir": "/r/x"}, "r", Path("/r"))

    charts = loss_charts([run({"step": [1, 2, 3, 4, 5], "time": [0.5, 1, 1.5, 2, 2.5],
                               "losses": {"G": [4.0, 3.0, None, 2.0, None], "flat": [1.0] * 5}}),
                          run({"step": [1, 2], "losses": {"G": [5.0, 1.0]}}, seed=1)])
    assert [c.title for c in charts] == ["G", "flat"]
    g = charts[0]
    assert g.y_range == ("1", "5") and g.x_range == ("1", "5")
    assert len(g.series[0].segments) == 1 and len(g.series[0].dots) == 1  # a gap splits the line
    assert g.series[0].segments[0].split()[0] == f"{g.left:.1f},{g.bottom - 3 / 4 * (g.bottom - g.top):.1f}"
    assert [s.label for s in g.series] == ["seed 0", "seed 1"]
    assert charts[1].y_range == ("1", "1")  # a flat loss still gets a box
    assert loss_charts([run({})]) == [] and loss_charts([run({"step": [], "time": [], "losses": {}})]) == []
    assert loss_charts([run({"step": [1, 2], "time": [0.5, 1.0], "losses": {"G": [2.0, 1.0]}})], "time")[0].x_label \
        == "training seconds"
