"""The generated site in a real browser: headless Chromium loads it from file://, takes a screenshot,
and a probe script checks for console/load/CSP errors, one row per method, and click-to-sort; a realistic
board (seven methods, every metric) read at 1400 and 400 px: what must be seen without scrolling is.

Dependency-free: the probe is an extra .js file next to a copy of the page (the pages forbid inline
scripts), it writes its findings into the DOM, and ``--dump-dom`` brings them back.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from bench.reports import render_site
from tests.report_example import example_runs, full_runs, write_result

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (chromium, chromium-browser or google-chrome on PATH); .ci/run installs Debian's chromium",
)
SCREENSHOT = Path(__file__).parent / "artifacts" / "report-screenshot.png"
BOARD_SHOT = Path(__file__).parent / "artifacts" / "board-{width}.png"
FRAME = ('<!doctype html><html><head><meta charset="utf-8"><style>body {{ margin: 0 }} iframe {{ border: 0; display: block }}'
         '</style><script src="frame.js"></script></head><body><iframe src="{page}" width="{width}" height="{height}">'
         '</iframe></body></html>')
FRAME_JS = """window.addEventListener("message", function (event) {
  var out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = event.data;
  document.body.appendChild(out);
});"""
EVIL = "<script>alert(1)</script>"

PROBE = """
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (event) {
    var target = event.target;
    errors.push(target && target !== window ? "failed to load " + (target.src || target.href) : "error: " + event.message);
  }, true);
  window.addEventListener("unhandledrejection", function (event) { errors.push("rejection: " + event.reason); });
  document.addEventListener("securitypolicyviolation", function (event) {
    errors.push("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
  });
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () { errors.push("console." + level + ": " + Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
  });
  window.alert = function (message) { errors.push("alert: " + message); };

  function methods(table) {
    var column = Array.prototype.findIndex.call(table.tHead.rows[0].cells, function (th) { return th.textContent.trim().indexOf("method") === 0; });
    return Array.prototype.map.call(table.tBodies[0].rows, function (row) { return row.cells[column].querySelector("a").textContent.trim(); });
  }

  window.addEventListener("load", function () {
    var report = { errors: errors, clicks: [] };
    report.brokenImages = Array.prototype.filter.call(document.images, function (img) { return !img.complete || !img.naturalWidth; })
      .map(function (img) { return img.getAttribute("src"); });
    report.polylines = document.querySelectorAll("svg polyline").length;
    var table = document.querySelector("table.leaderboard");
    if (table) {
      report.rows = methods(table);
      CLICKS.forEach(function (label) {
        var header = Array.prototype.find.call(table.tHead.rows[0].cells, function (th) { return th.textContent.trim().split(/\\s/)[0] === label; });
        header.querySelector("button").click();
        var sorted = Array.prototype.filter.call(table.tHead.rows[0].cells, function (th) { return th.hasAttribute("aria-sort"); });
        report.clicks.push({ label: label, direction: header.getAttribute("aria-sort"), sortedHeaders: sorted.length, rows: methods(table) });
      });
    }
    var out = document.createElement("pre");
    out.id = "probe-result";
    out.textContent = JSON.stringify(report);
    document.body.appendChild(out);
    console.log("colorbench-probe-done");
  });
})();
"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
            "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def with_probe(page: Path, script: str) -> Path:
    """A copy of ``page`` with ``script`` first in <head>."""
    (page.parent / "probe.js").write_text(script)
    copy = page.with_name(f"probe-{page.name}")
    copy.write_text(page.read_text().replace('<meta charset="utf-8">', '<meta charset="utf-8">\n<script src="probe.js"></script>', 1))
    return copy


def framed(page: Path, width: int, height: int) -> Path:
    """A page holding ``page`` in a ``width`` x ``height`` frame: a viewport narrower than headless Chromium's
    smallest window (500 px); what the framed page posts to it, it writes into <pre id="probe-result">."""
    (page.parent / "frame.js").write_text(FRAME_JS)
    frame = page.with_name(f"frame-{width}-{page.name}")
    frame.write_text(FRAME.format(page=page.name, width=width, height=height))
    return frame


def run_probe(page: Path, *args: str) -> dict:
    """Load ``page`` (Chromium given ``args`` too); return what a probe wrote as JSON into <pre id="probe-result">,
    with the console lines."""
    done = chromium(*args, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: {done.stdout[-1000:]} {done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line and "colorbench-probe-done" not in line]
    report = json.loads(html.unescape(found.group(1)))
    report["console"] = console
    return report


def probe(page: Path, clicks: list[str]) -> dict:
    """Load a copy of ``page`` with the probe script first in <head>; return what the probe found."""
    return run_probe(with_probe(page, PROBE.replace("CLICKS", json.dumps(clicks))))


def expected_order(rows: list[str], values: dict[str, float | None], direction: str) -> list[str]:
    """Stable sort, missing values last (what sort.js promises)."""
    present = sorted((m for m in rows if values[m] is not None), key=values.get, reverse=direction == "descending")
    return present + [m for m in rows if values[m] is None]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    runs = example_runs(tmp_path_factory.mktemp("browser") / "runs")
    write_result(runs, EVIL, 0, metrics={"psnr": 15.0, "ssim": 0.5})
    return render_site([runs], tmp_path_factory.mktemp("browser") / "site")


def test_leaderboard_in_headless_chromium(site):
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    (SCREENSHOT.parent / ".gitignore").write_text("*\n")  # test output, never committed
    SCREENSHOT.unlink(missing_ok=True)
    chromium("--window-size=1280,1600", f"--screenshot={SCREENSHOT}", (site / "index.html").as_uri())
    with Image.open(SCREENSHOT) as shot:
        assert shot.size == (1280, 1600)
        assert max(ImageStat.Stat(shot.convert("L")).stddev) > 20  # a rendered page, not a blank one
    print(f"screenshot: {SCREENSHOT}")

    board = json.loads((site / "leaderboard.json").read_text())["boards"][0]
    methods = [r["method"] for r in board["rows"]]
    report = probe(site / "index.html", ["ssim", "ssim", "fid", "#"])
    assert report["errors"] == [] and report["console"] == [] and report["brokenImages"] == []
    # one row per method and options, and the two reference rows; names as text
    assert report["rows"] == methods and len(methods) == 11 and EVIL in methods and "gray input" in methods
    current = methods
    for click, expected_direction in zip(report["clicks"], ["descending", "ascending", "ascending", "ascending"]):
        column = {"#": "rank"}.get(click["label"], click["label"])
        values = {r["method"]: r["rank"] if column == "rank" else r["metrics"][column]["mean"] for r in board["rows"]}
        assert click["direction"] == expected_direction and click["sortedHeaders"] == 1
        current = expected_order(current, values, expected_direction)
        assert click["rows"] == current, click["label"]
    assert report["clicks"][0]["rows"][0] == "ground truth"  # the best ssim first: a click re-sorted the table
    assert report["clicks"][0]["rows"] != methods


def test_method_page_in_headless_chromium(site):
    board = json.loads((site / "leaderboard.json").read_text())["boards"][0]
    page = site / next(r["page"] for r in board["rows"] if r["label"] == "pix2pix")
    report = probe(page, [])
    assert report["errors"] == [] and report["console"] == [] and report["brokenImages"] == []
    assert report["polylines"] == 3 * 3  # three losses, three seeds


LAYOUT = """
(function () {
  "use strict";
  STORED.forEach(function (pair) { window.localStorage.setItem(pair[0], pair[1]); });  // a returning reader
  window.addEventListener("load", function () {
    var width = window.innerWidth, board = document.querySelector("section.board");
    var table = board.querySelector("table.leaderboard"), headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    function find(label) { return headers.findIndex(function (th) { return th.textContent.trim().split(/\\s/)[0] === label; }); }
    function laidOut(element) { var r = element.getBoundingClientRect(); return r.width > 0 && r.height > 0; }
    function seen(element) { var r = element.getBoundingClientRect(); return laidOut(element) && r.left >= 0 && r.right <= width; }
    function methods() { return Array.prototype.map.call(table.tBodies[0].rows, function (row) { return row.querySelector("td.method a").textContent.trim(); }); }
    var columns = { rank: find("#"), method: find("method"), ranking: find(RANK_BY), next: find("psnr"), after: find("ssim"),
                    verdict: headers.findIndex(function (th) { return th.textContent.trim().indexOf("vs gray") === 0; }) };
    var report = { width: width, scrollWidth: document.documentElement.scrollWidth, rows: [],
                   verdictHeader: headers[columns.verdict].textContent.trim() };
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var entry = { method: row.querySelector("td.method a").textContent.trim(), seen: {}, height: row.getBoundingClientRect().height };
      Object.keys(columns).forEach(function (key) { entry.seen[key] = seen(row.cells[columns[key]]); });
      var interval = row.cells[columns.ranking].querySelector(".ci");
      entry.interval = interval ? seen(interval) : null;
      report.rows.push(entry);
    });
    var skipped = table.querySelector("tr.row-skipped details.reason");
    report.skipped = skipped && { open: skipped.open, text: skipped.textContent,
                                  summaryHeight: skipped.querySelector("summary").getBoundingClientRect().height };
    report.toc = Array.prototype.map.call(document.querySelectorAll(".toc a"), function (a) {  // one column a link
      var lefts = Array.prototype.map.call(a.getClientRects(), function (r) { return r.left; });
      return Math.max.apply(null, lefts) - Math.min.apply(null, lefts);
    });
    var folded = find(FOLDED), box = board.querySelector('input.show-columns[data-columns="metrics"]');
    report.folded = { inPage: folded >= 0 && !!headers[folded].querySelector("button"), shown: laidOut(headers[folded]),
                      checked: box && box.checked };
    if (box && !box.checked) box.click();
    headers[folded].querySelector("button").click();
    report.opened = { shown: laidOut(headers[folded]), stored: window.localStorage.getItem("colorbench.columns.metrics"),
                      everyBoard: Array.prototype.every.call(document.querySelectorAll('input[data-columns="metrics"]'), function (b) { return b.checked; }),
                      sort: headers[folded].getAttribute("aria-sort"), rows: methods(),
                      fits: document.documentElement.scrollWidth <= width };
    window.parent.postMessage(JSON.stringify(report), "*");  // to the page framing this one (see framed)
  });
})();
"""


@pytest.fixture(scope="module")
def full_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("full")
    return render_site([full_runs(root / "runs")], root / "site")


def layout(site: Path, width: int, stored: dict | None = None) -> dict:
    """What LAYOUT finds on the first board of ``site`` in a ``width``-px viewport (``stored``: localStorage)."""
    script = LAYOUT.replace("STORED", json.dumps(list((stored or {}).items()))).replace("RANK_BY", '"lpips"')
    page = with_probe(site / "index.html", script.replace("FOLDED", '"kd-alex"'))
    return run_probe(framed(page, width, 1400), f"--window-size={max(width, 500)},1400")


@pytest.mark.parametrize("width", [1400, 400])
def test_full_board_reads_at_a_glance(full_site, width):
    """Rank, name, the ranking metric (with its interval) and the verdict of every row in view without scrolling
    sideways; at 1400 px also the next two metrics, the rest one switch away (still sortable); a skipped row's
    reason in one line; no link of the board list split across its columns."""
    shot = Path(str(BOARD_SHOT).format(width=width))
    shot.parent.mkdir(parents=True, exist_ok=True)
    (shot.parent / ".gitignore").write_text("*\n")  # test output, never committed
    chromium(f"--window-size={max(width, 500)},2400", f"--screenshot={shot}",
             framed(full_site / "index.html", width, 2400).as_uri())
    with Image.open(shot) as whole:
        whole.crop((0, 0, width, 2400)).save(shot)  # the frame only
    print(f"screenshot: {shot}")
    board = json.loads((full_site / "leaderboard.json").read_text())["boards"][0]
    assert board["rank_by"] == "lpips" and len({r["method"] for r in board["rows"] if r["kind"] == "method"}) == 7
    report = layout(full_site, width)
    assert report["width"] == width and report["console"] == []
    assert report["verdictHeader"].startswith("vs gray on lpips")
    must = ("rank", "method", "ranking", "verdict") + (("next", "after") if width == 1400 else ())
    for row in report["rows"]:
        assert all(row["seen"][key] for key in must), (width, row)
        assert row["interval"] in (True, None), (width, row)  # where a row has an interval, it is in view too
    assert [r["method"] for r in report["rows"]] == [r["method"] for r in board["rows"]]
    # the other metrics: in the page and sortable (cards too), shown by one switch that every board follows
    assert report["folded"] == {"inPage": True, "shown": False, "checked": False}
    values = {r["method"]: r["metrics"]["kd-alex"]["mean"] for r in board["rows"]}
    assert report["opened"] == {"shown": True, "stored": "shown", "everyBoard": True, "sort": "ascending",
                                "rows": expected_order([r["method"] for r in board["rows"]], values, "ascending"),
                                "fits": True}  # the page still fits: a wide table scrolls in its own box
    if width == 400:
        assert report["scrollWidth"] <= width  # nothing on the page needs a sideways scroll
    else:
        assert max(r["height"] for r in report["rows"]) < 90  # a skipped row's paths and URLs no longer stack up
    assert report["skipped"] and not report["skipped"]["open"] and report["skipped"]["summaryHeight"] < 24  # one line...
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in report["skipped"]["text"]  # ...the rest on demand
    assert len(report["toc"]) == 3 and max(report["toc"]) < 2, report["toc"]


def test_column_switch_is_remembered(full_site):
    report = layout(full_site, 1400, stored={"colorbench.columns.metrics": "shown"})
    assert report["folded"] == {"inPage": True, "shown": True, "checked": True}
