"""The Turing-test study in a real browser: headless Chromium, driven over the DevTools protocol, loads the
study from file://, a rater clicks through every trial with the keyboard (← / →), reloads half-way and
continues, exports the votes with the page's button, and `bench turing score` reads them back with the
expected counts. Screenshots: a trial (desktop and phone), and the leaderboard with the fooling-rate column.

Dependency-free: Chromium speaks the protocol on a pipe (``--remote-debugging-pipe``: fd 3 in, fd 4 out,
NUL-separated JSON), so no websocket package and no port are needed. Keys and clicks are real input
events (``Input.dispatchKeyEvent`` / ``Input.dispatchMouseEvent``), not synthetic DOM events.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from tests.report_example import image_names, write_result

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (chromium, chromium-browser or google-chrome on PATH); .ci/run installs Debian's chromium",
)
ARTIFACTS = Path(__file__).parent / "artifacts"
KEYS = {"left": ("ArrowLeft", 37), "right": ("ArrowRight", 39), "enter": ("Enter", 13)}
METHODS = ("baseline", "pix2pix", "cyclegan-unpaired")
EVIL_NAME = '<img src=x onerror="alert(1)">tester'


class Browser:
    """One headless Chromium with a fresh profile, attached to its page over the DevTools pipe."""

    def __init__(self, downloads: Path, width: int = 1280, height: int = 800):
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def protocol_fds():  # in the child: the browser reads commands on fd 3 and writes replies on fd 4
            commands_fd = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            replies_fd = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)
            os.dup2(commands_fd, 3)
            os.dup2(replies_fd, 4)

        self.log = open(self.profile / "chromium.log", "w+")
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
             "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={self.profile}",
             "about:blank"],
            close_fds=False, preexec_fn=protocol_fds, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        os.close(commands_read)
        os.close(replies_write)
        self.buffer, self.last_id, self.session = b"", 0, None
        self.problems: list[str] = []  # console errors, exceptions, CSP violations, failed loads
        try:
            page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
            self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
            self.viewport(width, height)
        except BaseException:
            self.close()
            raise

    # -- protocol ---------------------------------------------------------------------------------
    def _message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.replies], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.replies, 1 << 20) if ready else b""
            if not chunk:
                self.log.seek(0)
                raise AssertionError(f"Chromium did not answer in time or exited: {self.log.read()[-2000:]}")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def _event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            self.problems.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            self.problems.append("exception: " + json.dumps(params["exceptionDetails"])[:500])
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            self.problems.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")

    def send(self, method: str, timeout: float = 30, **params):
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.commands, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self.last_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            self._event(reply)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self.commands)
        os.close(self.replies)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- page -------------------------------------------------------------------------------------
    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.02)

    def open(self, page: Path) -> None:
        self.send("Page.navigate", url=page.as_uri())
        self.wait_for("document.readyState === 'complete' && document.body.dataset.state !== 'loading'")

    def reload(self) -> None:
        self.evaluate("document.body.dataset.state = 'loading'")
        self.send("Page.reload")
        self.wait_for("document.readyState === 'complete' && document.body.dataset.state !== 'loading'")

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)

    def press(self, key: str) -> None:
        name, code = KEYS[key]
        text = {"text": "\r"} if key == "enter" else {}
        self.send("Input.dispatchKeyEvent", type="keyDown", key=name, code=name, windowsVirtualKeyCode=code, **text)
        self.send("Input.dispatchKeyEvent", type="keyUp", key=name, code=name, windowsVirtualKeyCode=code)

    def click(self, selector: str) -> None:
        box = self.evaluate(f"(function () {{ var el = document.querySelector({json.dumps(selector)}); el.scrollIntoView();"
                            " var r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type(self, text: str) -> None:
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return path


def trial_on_screen(browser: Browser, previous: str | None) -> str:
    """The id of the trial on screen, once its pictures are shown (a new one after ``previous``)."""
    return browser.wait_for(f"document.body.dataset.state === 'trial' && document.body.dataset.trial !== "
                            f"{json.dumps(previous or '')} && document.body.dataset.trial")


def wait_download(folder: Path, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while True:
        done = [p for p in folder.glob("*.json")]
        if done:
            return done[0]
        assert time.monotonic() < deadline, f"no download in {folder}: {list(folder.iterdir())}"
        time.sleep(0.05)


def click_through(study: Path, downloads: Path, choose, *, name: str = "", reload_after: int | None = None,
                  screenshots: dict[int, tuple[Path, int, int, bool]] | None = None,
                  block: int | None = None) -> tuple[Path, list[dict]]:
    """A rater in a fresh browser: starts, answers every trial with ← / → as ``choose(trial)`` says, exports.

    ``choose`` gets the trial's design entry and returns "left" or "right". ``reload_after``: reload the page
    after that many answers and continue. ``screenshots``: {trial number: (path, width, height, mobile)}.
    ``block``: open ``index.html#block=K`` (else the page draws one). Every pair on screen is checked: both
    pictures decoded at the same size, from files of the same number of bytes.
    Returns (the exported file, what was pressed: [{trial, choice}]).
    """
    design = {t["id"]: t for t in json.loads((study / "design.json").read_text())["trials"]}
    downloads.mkdir(parents=True, exist_ok=True)
    browser = Browser(downloads)
    pressed, previous = [], None
    try:
        page = study / "site" / "index.html"
        if block is None:
            browser.open(page)
        else:
            browser.send("Page.navigate", url=f"{page.as_uri()}#block={block}")
            browser.wait_for("document.readyState === 'complete' && document.body.dataset.state !== 'loading'")
        assert browser.evaluate("document.body.dataset.state") == "intro"
        if name:
            browser.click("#rater")
            browser.type(name)
        browser.press("enter")
        total = None
        while True:
            state = browser.wait_for("document.body.dataset.state === 'done' ? 'done' : "
                                     "(document.body.dataset.state === 'trial' && document.body.dataset.trial) || ''")
            if state == "done":
                break
            trial_id = trial_on_screen(browser, previous)
            total = total or int(browser.evaluate("document.querySelector('.trial-total').textContent"))
            number = len(pressed) + 1
            assert browser.evaluate("document.getElementById('position').textContent") == str(number)
            if screenshots and number in screenshots:
                path, width, height, mobile = screenshots[number]
                browser.viewport(width, height, mobile)
                time.sleep(0.2)
                browser.screenshot(path)
                browser.viewport(1280, 800)
            shown = browser.evaluate("['left-img', 'right-img'].map(function (id) { var img = document.getElementById(id);"
                                     " return [img.naturalWidth, img.naturalHeight, img.getAttribute('src')]; })")
            assert shown[0][:2] == shown[1][:2] and shown[0][0] > 0, shown  # both decoded, the same size
            sizes = {(study / "site" / src).stat().st_size for _, _, src in shown}
            assert len(sizes) == 1, f"trial {trial_id}: the files differ in size {sizes}"
            choice = choose(design[trial_id])
            browser.press(choice)
            pressed.append({"trial": trial_id, "choice": choice})
            previous = trial_id
            if reload_after and len(pressed) == reload_after:
                browser.reload()
                assert browser.evaluate("document.body.dataset.state") == "intro"
                assert browser.evaluate("document.getElementById('resume-count').textContent") == str(reload_after)
                browser.click("#continue")
                previous = None
        assert len(pressed) == total
        assert browser.evaluate("document.getElementById('done-count').textContent") == str(total)
        browser.click("#export")
        exported = wait_download(downloads)
        assert browser.problems == [], browser.problems
        assert browser.evaluate("document.querySelectorAll('img[src=x]').length") == 0  # the name is text, not HTML
    finally:
        browser.close()
    return exported, pressed


def runs_with_samples(runs: Path, images: int) -> Path:
    for method in METHODS:
        write_result(runs, method, 0, sample_names=image_names(images), size=16)
    return runs


def test_click_through_a_study_export_and_score(run_cli, tmp_path):
    """3 methods x 6 images, the default design (3 blocks: each rater judges each image once) + 3 catch trials
    per block; one careful rater on block 1 (keyboard, reload half-way) and one careless one (a block at random)."""
    runs = runs_with_samples(tmp_path / "runs", 6)
    study = tmp_path / "study"
    code, out, err = run_cli("turing", "--runs", runs, "--out", study, "--catch", "3", "--seed", "7")
    assert code == 0, err
    design = json.loads((study / "design.json").read_text())
    arms = [arm["method"] for arm in design["arms"]]
    assert sorted(arms) == sorted(METHODS) and design["blocks"] == 3 and len(design["trials"]) == 3 * (6 + 3)
    block1 = [t for t in design["trials"] if t["block"] == 1]
    # the careful rater: always right on catch trials; fooled by arm 0 always, arm 1 never, arm 2 every other time
    expected = {k: [0, 0] for k in range(3)}
    turns = {2: 0}

    def careful(trial):
        fake = "right" if trial["real"] == "left" else "left"
        if trial["kind"] == "catch":
            return trial["real"]
        arm = trial["arm"]
        fooled = arm == 0 or (arm == 2 and turns[2] % 2 == 0)
        turns[2] += arm == 2
        expected[arm][0] += fooled
        expected[arm][1] += 1
        return fake if fooled else trial["real"]

    shots = {2: (ARTIFACTS / "turing-trial.png", 1280, 800, False), 3: (ARTIFACTS / "turing-trial-phone.png", 390, 844, True)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # test output, never committed
    careful_file, pressed = click_through(study, tmp_path / "dl-careful", careful, name=EVIL_NAME, reload_after=5,
                                          screenshots=shots, block=1)
    exported = json.loads(careful_file.read_text())
    assert exported["study_id"] == design["study_id"] and exported["rater"] == EVIL_NAME and exported["block"] == 1
    assert [{"trial": v["trial"], "choice": v["choice"]} for v in exported["votes"]] == pressed
    assert [v["trial"] for v in exported["votes"]] == [t["id"] for t in block1]  # the design's order
    assert sorted(t["image"] for t in block1 if t["kind"] == "method") == sorted(design["images"])  # each once
    assert all(v["timed_out"] is False and v["rt_ms"] >= 0 for v in exported["votes"])
    for shot, size in ((shots[2][0], (1280, 800)), (shots[3][0], (390, 844))):
        with Image.open(shot) as image:
            assert image.size == size and max(ImageStat.Stat(image.convert("L")).stddev) > 20

    careless_file, _ = click_through(study, tmp_path / "dl-careless", lambda trial: "left")
    code, out, err = run_cli("turing", "score", study, careful_file, careless_file, "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert (scores["raters_total"], scores["raters_kept"], scores["raters_dropped"]) == (2, 1, 1)
    dropped = next(r for r in scores["raters"] if not r["kept"])
    assert dropped["reason"].endswith("catch trials right (< 80%)") and dropped["catch"]["total"] == 3
    assert [(a["fooled"], a["votes"]) for a in scores["arms"]] == [tuple(expected[k]) for k in range(3)]
    assert [a["votes"] for a in scores["arms"]] == [2, 2, 2] and scores["catch"] == {"correct": 3, "votes": 3, "rate": 1.0}
    assert all(a["ci95"] is None for a in scores["arms"])  # one rater kept: no interval over raters
    assert [a["rate"] for a in scores["arms"]] == [1.0, 0.0, 0.5]

    # the leaderboard with the fooling-rate column, in the browser too
    site = tmp_path / "site"
    code, out, err = run_cli("turing", "score", study, careful_file, careless_file, "--report", site)
    assert code == 0, err
    assert "fooling rate" in out and out.strip().endswith("index.html")
    browser = Browser(tmp_path / "dl-site", 1400, 900)
    try:
        browser.open(site / "index.html")
        headers = browser.evaluate("Array.prototype.map.call(document.querySelectorAll('table.leaderboard thead th'),"
                                   " function (th) { return th.textContent.trim(); })")
        assert "fooling rate" in headers
        column = headers.index("fooling rate")
        cells = browser.evaluate(
            "(function () { var out = {}; document.querySelectorAll('table.leaderboard tbody tr').forEach(function (tr) {"
            f" out[tr.cells[1].querySelector('a').textContent.trim()] = tr.cells[{column}].textContent.trim(); }});"
            " return out; })()")
        for arm in scores["arms"]:
            assert cells[arm["method"]].startswith(f"{100 * arm['rate']:.1f} %") and "N = 2 votes" in cells[arm["method"]]
        browser.click(f"table.leaderboard thead th:nth-child({column + 1}) button")  # sort by fooling rate, best first
        order = browser.evaluate("Array.prototype.map.call(document.querySelectorAll('table.leaderboard tbody tr'),"
                                 " function (tr) { return tr.cells[1].querySelector('a').textContent.trim(); })")
        assert order == [a["method"] for a in sorted(scores["arms"], key=lambda a: -a["rate"])]
        browser.evaluate("window.scrollTo(0, 0)")
        browser.screenshot(ARTIFACTS / "turing-leaderboard.png")
        assert browser.problems == [], browser.problems
    finally:
        browser.close()
    print(f"screenshots: {shots[2][0]}, {shots[3][0]}, {ARTIFACTS / 'turing-leaderboard.png'}")


def test_time_limit_hides_the_pictures_and_records_timeouts(run_cli, tmp_path):
    runs = tmp_path / "runs"
    write_result(runs, "baseline", 0, sample_names=image_names(2), size=16)
    study = tmp_path / "study"
    code, _, err = run_cli("turing", "--runs", runs, "--out", study, "--catch", "0", "--time-limit", "1")
    assert code == 0, err
    downloads = tmp_path / "dl"
    downloads.mkdir()
    browser = Browser(downloads)
    try:
        browser.open(study / "site" / "index.html")
        browser.press("enter")  # start with a random rater id
        first = trial_on_screen(browser, None)
        browser.wait_for("document.getElementById('pair').classList.contains('expired')", timeout=5)
        hidden = browser.evaluate("getComputedStyle(document.getElementById('left-img')).visibility")
        browser.press("left")  # after the limit: still a valid answer, flagged timed out
        trial_on_screen(browser, first)
        browser.press("right")  # at once: within the limit
        browser.wait_for("document.body.dataset.state === 'done'")
        browser.click("#export")
        votes = json.loads(wait_download(downloads).read_text())
        assert browser.problems == [], browser.problems
    finally:
        browser.close()
    assert hidden == "hidden"
    assert votes["rater"].startswith("rater-") and votes["time_limit_s"] == 1
    assert [v["timed_out"] for v in votes["votes"]] == [True, False]
    assert votes["votes"][0]["rt_ms"] >= 1000 and votes["votes"][1]["rt_ms"] < 1000
    code, out, err = run_cli("turing", "score", study, downloads / next(os.walk(downloads))[2][0], "--json")
    assert code == 0, err
    assert json.loads(out)["arms"][0]["timed_out"] == 1
