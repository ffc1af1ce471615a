"""The HTML leaderboard site: numbers, failures, escaping, byte-stability, merging, bad inputs."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.stats import bootstrap_ci
from bench.reports import render_site
from bench.reports.charts import loss_charts
from bench.reports.example import example_runs, write_result
from bench.reports.runs import normalise

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


def leaderboard_rows(site: Path, index: int = 0) -> list[list[dict]]:
    tables = [t for t in parse(site / "index.html").tables if "leaderboard" in t["class"]]
    return tables[index]["rows"][1:]


def header(site: Path, index: int = 0) -> list[str]:
    tables = [t for t in parse(site / "index.html").tables if "leaderboard" in t["class"]]
    return [c["text"].split()[0] for c in tables[index]["rows"][0]]


def cell(row: list[dict], columns: list[str], name: str) -> dict:
    return row[columns.index(name)]


def results(runs: Path) -> dict[tuple[str, int], dict]:
    return {(r["method"], r["seed"]): r for r in map(lambda p: json.loads(p.read_text()), runs.rglob("result.json"))}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    runs = example_runs(tmp_path_factory.mktemp("example") / "runs")
    site = render_site([runs], tmp_path_factory.mktemp("example") / "site")
    return runs, site, json.loads((site / "leaderboard.json").read_text())


def test_real_run_renders_a_leaderboard(run_cli, tmp_path):
    runs, site = tmp_path / "runs", tmp_path / "site"
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--size", "32",
                           "--budget", "2steps", "--samples", "2", "-o", "width=16", "--out", runs)
    assert code == 0, err
    code, out, err = run_cli("report", "--runs", runs, "--out", site)
    assert code == 0, err
    assert out.strip().endswith("index.html")
    result = json.loads(next(runs.rglob("result.json")).read_text())
    rows = leaderboard_rows(site)
    assert [cell(r, header(site), "method")["text"] for r in rows] == ["baseline"]
    board = json.loads((site / "leaderboard.json").read_text())["boards"][0]
    psnr = board["rows"][0]["metrics"]["psnr"]
    assert psnr["mean"] == result["metrics"]["psnr"] and psnr["ci95"] == result["metric_details"]["psnr"]["ci95"]
    assert float(cell(rows[0], header(site), "psnr")["sort"]) == psnr["mean"]
    images = parse(site / "index.html").images
    assert len(images) == 2 * 3 and all((site / i["src"]).is_file() for i in images)  # gray, baseline, truth
    page = site / board["rows"][0]["page"]
    text = page.read_text()
    assert "<polyline" in text and "L2" in text  # the baseline's loss curve
    env = result["environment"]
    for fact in (env["git_commit"], env["torch"], env["device"], result["data"]["info"]["split"], "2steps", "seeds"):
        for html in (site / "index.html", page):
            assert str(fact) in html.read_text().replace("&#39;", "'").replace("&#34;", '"')
    assert all((site / i["src"].removeprefix("../../")).is_file() for i in parse(page).images)


def test_numbers_ranking_and_best_marks(example):
    runs, site, data = example
    columns = header(site)
    rows = leaderboard_rows(site)
    assert [cell(r, columns, "method")["text"] for r in rows] == [
        "pix2pix", "baseline", "cyclegan", "broken", "pix2pix_resnet18"]  # by psnr, then failed, skipped
    assert [cell(r, columns, "#")["text"] for r in rows] == ["1", "2", "3", "—", "—"]
    best = {name: [cell(r, columns, "method")["text"] for r in rows if "best" in cell(r, columns, name)["class"]]
            for name in ("psnr", "ssim", "fid")}
    assert best == {"psnr": ["pix2pix"], "ssim": ["baseline"], "fid": ["pix2pix"]}  # fid: lower is better
    assert all("★" in cell(r, columns, "psnr")["text"] for r in rows[:1])
    source = results(runs)
    board = data["boards"][0]
    assert board["primary_metric"] == "psnr"
    for row_html, row in zip(rows, board["rows"]):
        for name in ("psnr", "ssim", "fid"):
            seeds = [source[row["method"], s] for s in row["seeds_ok"]]
            values = [r["metrics"][name] for r in seeds]
            entry = row["metrics"][name]
            if not values:
                assert entry["mean"] is None and cell(row_html, columns, name)["sort"] == ""
                continue
            assert entry["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert entry["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)
            assert float(cell(row_html, columns, name)["sort"]) == entry["mean"]  # page == json
            if name != "fid":  # per-image metrics: CI of the seed-averaged per-image values
                averaged = [statistics.fmean(v) for v in zip(*(r["per_image"][name] for r in seeds))]
                assert entry["ci95"] == bootstrap_ci(averaged)
            else:
                assert entry["ci95"] is None  # set-level over several seeds: std only
    with_csv = list(csv.DictReader(io.StringIO((site / "leaderboard.csv").read_text())))
    assert [r["method"] for r in with_csv] == [r["method"] for r in board["rows"]]
    for line, row in zip(with_csv, board["rows"]):
        assert (float(line["psnr_mean"]) if line["psnr_mean"] else None) == row["metrics"]["psnr"]["mean"]
        assert line["status"] == row["status"]


def test_failures_and_unavailable_metrics_are_shown_with_reasons(example):
    _, site, data = example
    index = (site / "index.html").read_text()
    columns, rows = header(site), leaderboard_rows(site)
    statuses = {cell(r, columns, "method")["text"]: cell(r, columns, "status")["text"] for r in rows}
    assert statuses["broken"].startswith("failed") and "CUDA out of memory (example)" in statuses["broken"]
    assert statuses["pix2pix_resnet18"].startswith("skipped") and "ResNet18 weights not found" in statuses["pix2pix_resnet18"]
    lpips = cell(rows[0], columns, "lpips")
    assert "unavailable" in lpips["text"] and "LPIPS weights not found" in lpips["title"]
    assert "lpips unavailable: LPIPS weights not found" in index  # visible note under the table
    assert "N=12 &lt; 2048" in index  # the FID small-N warning
    assert "N = 12 test images" in index
    broken = next(r for r in data["boards"][0]["rows"] if r["method"] == "broken")
    assert broken["status"] == "failed" and "out of memory" in broken["reason"]
    assert "Traceback (most recent call last)" in (site / broken["page"]).read_text()


def test_user_strings_are_escaped_and_file_names_safe(tmp_path):
    runs = tmp_path / "runs"
    quoted = "a \"quoted\" 'name' & more"
    write_result(runs, EVIL, 0, dataset=EVIL, metrics={"psnr": 20.0, EVIL: 1.0}, losses=(EVIL,),
                 sample_names=[quoted, EVIL], config={"note": EVIL}, error=None)
    write_result(runs, "other", 0, dataset=EVIL, status="failed", error=EVIL)
    site = render_site([runs], tmp_path / "site")
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        assert "<script>alert" not in text and "alert(1)</script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        scripts = parse(page).scripts
        assert [s["src"].rsplit("/", 1)[-1] for s in scripts] == ["sort.js"]  # no other script on any page
        assert "Content-Security-Policy" in text
    method_page = next(p for p in pages if p.name != "index.html" and "other" not in p.name)
    text = method_page.read_text()
    assert "<text" in text and "&lt;script&gt;" in text.split("<svg", 1)[1]  # the loss name in the SVG
    alts = [i["alt"] for i in parse(method_page).images]
    assert any(quoted in alt for alt in alts)  # parsed back intact, so it was escaped in the attribute
    assert "&#34;quoted&#34;" in text
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
    third = render_site([runs], tmp_path / "third")
    assert DATE.fullmatch(json.loads((third / "leaderboard.json").read_text())["generated"])


def test_merging_folders_later_folder_wins_duplicates(tmp_path):
    a, b = tmp_path / "machine-a" / "runs", tmp_path / "machine-b" / "runs"
    write_result(a, "baseline", 0, metrics={"psnr": 20.0})
    write_result(a, "cyclegan", 0, metrics={"psnr": 18.0})
    write_result(b, "baseline", 0, metrics={"psnr": 25.0})
    write_result(b, "pix2pix", 0, metrics={"psnr": 22.0})
    site = render_site([a, b], tmp_path / "site")
    board = json.loads((site / "leaderboard.json").read_text())["boards"]
    assert len(board) == 1
    rows = {r["method"]: r for r in board[0]["rows"]}
    assert sorted(rows) == ["baseline", "cyclegan", "pix2pix"]
    assert rows["baseline"]["metrics"]["psnr"]["mean"] == results(b)["baseline", 0]["metrics"]["psnr"]
    note = "baseline seed 0: runs/demo/baseline/seed0 (ok) replaced by runs#2/demo/baseline/seed0 (ok)"
    assert board[0]["notes"] == [note + "; later --runs folders win"]
    assert note in (site / "index.html").read_text()
    reverse = json.loads((render_site([b, a], tmp_path / "reverse") / "leaderboard.json").read_text())["boards"][0]
    assert {r["method"]: r for r in reverse["rows"]}["baseline"]["metrics"]["psnr"]["mean"] == \
        results(a)["baseline", 0]["metrics"]["psnr"]
    again = json.loads((render_site([a, a], tmp_path / "again") / "leaderboard.json").read_text())["boards"][0]
    assert again["notes"] == [] and len(again["rows"]) == 2  # the same folder twice is read once


def test_one_board_per_dataset_size_and_budget(tmp_path):
    runs = tmp_path / "runs"
    write_result(runs / "a", "baseline", 0, size=32)
    write_result(runs / "b", "baseline", 0, size=64)
    write_result(runs / "c", "baseline", 0, size=32, budget=("time", 60.0, "1m"))
    write_result(runs / "d", "baseline", 0, dataset="flowers")
    site = render_site([runs], tmp_path / "site")
    boards = json.loads((site / "leaderboard.json").read_text())["boards"]
    assert [(b["dataset"], b["size"], b["budget"]["label"]) for b in boards] == [
        ("demo", 32, "20steps"), ("demo", 32, "1m"), ("demo", 64, "20steps"), ("flowers", 32, "20steps")]
    assert len({b["id"] for b in boards}) == 4
    index = (site / "index.html").read_text()
    assert all(f'href="#{b["id"]}"' in index for b in boards)
    assert "budget 1m (60 s)" in index


def test_bad_inputs_give_one_line_errors(run_cli, tmp_path):
    code, _, err = run_cli("report", "--runs", tmp_path / "nope", "--out", tmp_path / "site")
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("report", "--runs", tmp_path / "empty", "--out", tmp_path / "site")
    assert code == 2 and "no result.json" in err
    runs = tmp_path / "runs"
    write_result(runs, "baseline", 0)
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
    (runs / "demo" / "baseline" / "seed0" / "result.json").write_text("{not json")
    with pytest.raises(BenchError, match="cannot read"):
        render_site([runs], site)


def test_odd_and_partial_results_render(tmp_path):
    runs = tmp_path / "runs"
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"secret" * 10)
    (runs / "minimal").mkdir(parents=True)
    (runs / "minimal" / "result.json").write_text(json.dumps({"method": "minimal", "dataset": "demo"}))
    write_result(runs / "odd", "odd", 0, metrics={"psnr": 21.0}, budget=("steps", 20, "20steps"),
                 metric_details={"psnr": {"status": "ok", "value": float("nan")}, "ssim": "??"},
                 samples=[{"name": "x", "index": 0, "gray": "../../../../secret.png", "pred": "samples/none.png",
                           "truth": 7}, "not a sample"],
                 history={"step": [1, 2, 3, 4, 5], "losses": {"L1": [1.0, None, 0.5, "x", 0.2], "flat": [1, 1]}})
    write_result(runs / "old", "old", 0, metrics={"psnr": 21.0}, metric_details=None, timings=None, environment=[])
    write_result(runs / "status", "weird", 0, status="exploded", metrics={"psnr": 1.0})
    site = render_site([runs], tmp_path / "site")
    boards = json.loads((site / "leaderboard.json").read_text())["boards"]
    assert [b["size"] for b in boards] == [None, 32]  # the minimal result has no size nor budget
    rows = {r["method"]: r for b in boards for r in b["rows"]}
    assert rows["old"]["metrics"]["psnr"]["mean"] == results(runs / "old")["old", 0]["metrics"]["psnr"]
    assert rows["odd"]["metrics"]["psnr"]["status"] == "failed"  # NaN is no value
    assert rows["weird"]["status"] == "failed" and "unknown status 'exploded'" in rows["weird"]["reason"]
    assert rows["minimal"]["status"] == "failed"
    copied = [p.read_bytes() for p in site.rglob("*.png")]
    assert secret.read_bytes() not in copied  # a result.json cannot pull files from outside its run folder


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
