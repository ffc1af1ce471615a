"""The board at a glance (issue 20): which columns show and which fold (all still in the page and the exports),
one note per board for unavailable metrics, values below 0 explained once, a skipped row's reason in one line,
"vs gray" naming its metric. The same board in a browser: tests/test_report_browser.py."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from bench.reports import render_site
from bench.reports.cells import Cell, Column
from tests.report_example import FID_MISSING, full_runs
from bench.reports.layout import glance_columns
from bench.reports.rows import short_reason


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, list[dict], str]:
    root = tmp_path_factory.mktemp("glance")
    site = render_site([full_runs(root / "runs")], root / "site")
    return site, json.loads((site / "leaderboard.json").read_text())["boards"], (site / "index.html").read_text()


def section(page: str, slug: str) -> str:
    start = page.index(f'<section class="board" id="{slug}">')
    return page[start:page.index("</section>", start)]


def notes_of(board_html: str) -> dict[int, str]:
    return {int(n): text for n, text in re.findall(r'<li id="[^"]*-note-(\d+)" value="\d+">(.*?)</li>', board_html)}


def test_columns_at_a_glance_and_the_rest_one_click_away(full):
    site, boards, page = full
    board = section(page, boards[0]["id"])
    headers = [(re.search(r'class="([^"]*)"', tag).group(1) if "class=" in tag else "", label)
               for tag, label in re.findall(r'(<th scope="col"[^>]*>)<button type="button">([^<]*)</button>', board)]
    shown = [label.split()[0] for css, label in headers if not css.startswith("fold")]
    assert shown == ["#", "method", "status", "vs", "lpips", "psnr", "ssim", "seeds"]  # the ranking metric first
    assert "vs gray on lpips" in [label for _, label in headers]
    folded = [label.split()[0] for css, label in headers if css == "fold-metrics"]
    assert folded == ["fid", "kid", "fd-alex", "kd-alex", "colourfulness", "delta_colourfulness", "ab_hist_swd"]
    assert {c["name"] for c in boards[0]["metrics"]} == set(shown[4:7] + folded)  # every metric still a column...
    assert len([css for css, _ in headers if css == "fold-stats"]) == 8
    assert 'data-columns="metrics"> more metrics' in board and 'data-columns="stats"> training and speed' in board
    lines = list(csv.DictReader(io.StringIO((site / "leaderboard.csv").read_text())))
    assert all(f"{name}_mean" in lines[0] for name in folded)  # ...and in the exports
    assert all("kd-alex" in row["metrics"] for row in boards[0]["rows"] if row["status"] == "ok")


def test_one_note_for_unavailable_metrics_and_one_per_family_below_zero(full):
    _, boards, page = full
    for entry in boards:
        board = section(page, entry["id"])
        notes = notes_of(board)
        missing = [n for n, text in notes.items() if "FID Inception weights unavailable" in text]
        assert len(missing) == 1 and notes[missing[0]].startswith("fid, kid unavailable: ")
        assert "`bench weights`" in notes[missing[0]] and sum(FID_MISSING in text for text in notes.values()) == 1
        cells = re.findall(r'<td class="num unavailable[^>]*>\s*<span class="value">(.*?)</span>.*?-note-(\d+)"', board)
        assert cells and {value for value, _ in cells} == {"—"} and {int(n) for _, n in cells} == set(missing)
    board = section(page, boards[0]["id"])
    notes = notes_of(board)
    truth = board[board.index(">ground truth</a>"):]
    truth = truth[:truth.index("</tr>")]
    for metric, words in (("kd-alex", "an unbiased estimator"), ("fd-alex", "a Fréchet distance is never below 0")):
        value, number = re.search(rf'data-label="{metric} ↓">\s*<span class="value">([^<]*)</span>.*?-note-(\d+)"', truth,
                                  re.S).groups()
        assert float(value) < 0 and notes[int(number)].startswith(f"{metric} below 0: {words}")
        assert " as 0 ± its interval" in notes[int(number)]
        assert sum(words in text for text in notes.values()) == 1  # said once per board


def test_skipped_row_says_why_in_one_line(full):
    _, boards, page = full
    board = section(page, boards[0]["id"])
    row = board[board.index(">pix2pix-resnet18</a>"):]
    row = row[:row.index("</tr>")]
    summary = re.search(r'<summary title="[^"]*">(.*?)</summary>', row).group(1)
    assert summary == "seeds 0, 1, 2: ImageNet ResNet18 weights unavailable"
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in row.split("</summary>")[1]  # on demand
    scratch = board[board.index(">pix2pix-resnet18-scratch</a>"):]
    assert "<summary" in scratch and "seed 2 failed: diverged: non-finite G_L1 at step 57</summary>" in scratch


def test_glance_columns_and_short_reasons():
    class Row:  # what glance_columns reads of a row
        def __init__(self, values):
            self.is_reference, self.cells = False, {k: Cell("ok" if v is not None else "unavailable", mean=v)
                                                    for k, v in values.items()}

    columns = [Column(n, higher_is_better=h) for n, h in
               (("psnr", True), ("ssim", True), ("lpips", False), ("fid", False), ("colourfulness", None))]
    rows = [Row({"psnr": 20.0, "ssim": None, "lpips": 0.2, "fid": 50.0, "colourfulness": 30.0})]
    names = lambda split: [[c.name for c in part] for part in split]  # noqa: E731
    assert names(glance_columns(columns, "lpips", rows)) == [["lpips", "psnr", "fid"], ["ssim", "colourfulness"]]
    assert names(glance_columns(columns, "fid", rows)) == [["fid", "psnr", "lpips"], ["ssim", "colourfulness"]]
    assert names(glance_columns(columns, None, rows)) == [["psnr", "fid", "lpips"], ["ssim", "colourfulness"]]
    assert short_reason(FID_MISSING) == "FID Inception weights unavailable"
    assert short_reason("interrupted by the user (Ctrl-C) at step 12") == "interrupted by the user (Ctrl-C) at step 12"
