"""The generated site in a real browser: headless Chromium loads it from file://, takes a screenshot,
and a probe script checks for console/load/CSP errors, one row per method, and click-to-sort.

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
from bench.reports.example import example_runs, write_result

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (chromium, chromium-browser or google-chrome on PATH); .ci/run installs Debian's chromium",
)
SCREENSHOT = Path(__file__).parent / "artifacts" / "report-screenshot.png"
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


def probe(page: Path, clicks: list[str]) -> dict:
    """Load a copy of ``page`` with the probe script first in <head>; return what the probe found."""
    script = page.with_name("probe.js")
    script.write_text(PROBE.replace("CLICKS", json.dumps(clicks)))
    copy = page.with_name(f"probe-{page.name}")
    copy.write_text(page.read_text().replace('<meta charset="utf-8">', '<meta charset="utf-8">\n<script src="probe.js"></script>', 1))
    done = chromium("--virtual-time-budget=5000", "--dump-dom", copy.as_uri())
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: {done.stdout[-1000:]} {done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line and "colorbench-probe-done" not in line]
    report = json.loads(html.unescape(found.group(1)))
    report["console"] = console
    return report


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
