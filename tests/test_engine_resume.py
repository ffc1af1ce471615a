"""Runs that survive: kill -9 and SIGTERM mid-run, then the same command resumes; the index under concurrency."""

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.store import index
from bench.store.results import RESULT_FILE, write_result
from tests.helpers import find_runs

# A checkpoint every step. The networks are the smallest (4-8 channels): the steps are cheap, so there
# are enough of them that a run is still mid-training when the test stops it.
ARGS = ["run", "--dataset", "sample", "--size", "32", "--budget", "64steps", "--seeds", "1", "--device", "cpu",
        "--metrics", "psnr,ssim", "--checkpoint-every", "0.0001", "-o", "batch_size=2"]
NETS = {"baseline": ("-o", "baseline.width=8"), "pix2pix": ("-o", "pix2pix.ngf=4", "-o", "pix2pix.ndf=4")}


def bench(out: Path, *extra: str, methods: tuple[str, ...] = ("baseline", "pix2pix")) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "COLORBENCH_QUIET": "0"}
    nets = [arg for method in methods for arg in NETS[method]]
    return subprocess.Popen([sys.executable, "-m", "bench", *ARGS, "--methods", ",".join(methods), *nets,
                             "--out", str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(condition, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"bench exited early ({process.returncode}): {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the run to reach the point to interrupt")
        time.sleep(0.01)


def metrics(out: Path) -> dict:
    found = {}
    for method in ("baseline", "pix2pix"):
        (folder,) = find_runs(out, "sample", method, 0)
        result = json.loads((folder / RESULT_FILE).read_text())
        assert result["status"] == "ok", result["error"]
        found[method] = (result["metrics"], result["budget"]["steps"])
    return found


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The metrics of the same command never stopped, as a function: its process starts now and runs
    beside the test's own (one thread each, on a core each); the function waits for it."""
    out = tmp_path_factory.mktemp("uninterrupted")
    process = bench(out)
    output = []  # read as it comes (a full pipe would stop the process)
    reader = threading.Thread(target=lambda: output.append(process.communicate(timeout=600)), daemon=True)
    reader.start()

    def result() -> dict:
        reader.join()
        assert process.returncode == 0, output[0][1] if output else "no output"
        return metrics(out)

    yield result
    if process.poll() is None:  # a test failed before it waited
        os.killpg(process.pid, signal.SIGKILL)
    reader.join()


def _resume_state(out: Path, method: str):
    return lambda: any((f / "resume.pt").is_file() for f in find_runs(out, "sample", method))


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_resumes_bit_identical(tmp_path, uninterrupted):
    out = tmp_path / "runs"
    process = bench(out)
    wait_for(_resume_state(out, "pix2pix"), process)  # baseline finished, pix2pix mid-training
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    (baseline_folder,) = find_runs(out, "sample", "baseline", 0)
    finished = (baseline_folder / RESULT_FILE).read_bytes()

    process = bench(out)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "baseline seed 0: already done" in err and "pix2pix seed 0: resumed at step" in err
    assert (baseline_folder / RESULT_FILE).read_bytes() == finished  # untouched, byte for byte
    assert metrics(out) == uninterrupted()  # bit-identical to never stopping
    assert not list(out.rglob("resume.pt")) and not list(out.rglob("*.tmp"))
    assert index.check(out)["missing"] == [] and index.check(out)["stale"] == []


@pytest.mark.slow
def test_sigterm_saves_an_interrupted_result_and_the_rerun_finishes(tmp_path, uninterrupted):
    out = tmp_path / "runs"
    process = bench(out)
    wait_for(_resume_state(out, "baseline"), process)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "SIGTERM" in err
    (folder,) = find_runs(out, "sample", "baseline", 0)
    interrupted = json.loads((folder / RESULT_FILE).read_text())
    assert interrupted["status"] == "interrupted" and (folder / "resume.pt").is_file()
    db = sqlite3.connect(out / "runs.sqlite")
    assert db.execute("SELECT status FROM runs WHERE method = 'baseline'").fetchone()[0] == "interrupted"

    process = bench(out)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "baseline seed 0: resumed at step" in err
    assert metrics(out) == uninterrupted()


@pytest.mark.slow
def test_fresh_starts_interrupted_runs_over(tmp_path):
    out = tmp_path / "runs"
    process = bench(out)
    wait_for(_resume_state(out, "baseline"), process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process = bench(out, "--fresh", methods=("baseline",))
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert "discarding the resume state" in err and "baseline seed 0: started" in err


def _write_many(out: str, worker: int, count: int) -> None:
    for k in range(count):
        folder = Path(out) / "grid" / f"w{worker}" / f"r{k}"
        write_result(folder, {"method": f"m{worker}", "dataset": "grid", "seed": k, "status": "ok",
                              "metric_details": {"psnr": {"value": float(k), "status": "ok"}}})
        index.sync_folder(Path(out), folder)


def test_concurrent_writers_keep_the_index_in_step_with_the_files(tmp_path):
    workers, count = 6, 25
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(str(tmp_path), w, count)) for w in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0
    state = index.check(tmp_path)
    assert state["files"] == state["rows"] == workers * count and not state["missing"] and not state["stale"]
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == workers * count


def test_index_rebuild_restores_a_drifted_index(run_cli, tmp_path):
    for k in range(3):
        write_result(tmp_path / "d" / f"r{k}", {"method": "m", "dataset": "d", "status": "failed",
                                                "metric_details": {"psnr": {"value": 1.0}}})
        index.sync_folder(tmp_path, tmp_path / "d" / f"r{k}")
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    with db:
        db.execute("DELETE FROM runs WHERE path = 'd/r1'")
        db.execute("INSERT INTO runs (path) VALUES ('gone/r9')")
    db.close()
    code, stdout, _ = run_cli("index", "--runs", tmp_path)
    assert code == 1 and "not indexed: d/r1" in stdout and "no result file: gone/r9" in stdout
    code, stdout, _ = run_cli("index", "--runs", tmp_path, "--rebuild")
    assert code == 0 and "rebuilt from 3" in stdout
    assert run_cli("index", "--runs", tmp_path)[0] == 0
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 0  # failed runs have no metric rows


def test_orphan_temp_files_of_dead_processes_are_cleaned(tmp_path):
    from bench.store.atomic import clean_orphans

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".checkpoint.pt.{dead.stdout.strip()}-abcd1234.tmp"
    orphan.write_bytes(b"x" * 100)
    mine = tmp_path / f".result.json.{os.getpid()}-abcd1234.tmp"
    mine.write_text("{}")
    assert clean_orphans(tmp_path) == [orphan]
    assert not orphan.exists() and mine.exists()


def test_a_crash_while_scoring_resumes_at_scoring_with_the_same_numbers(run_cli, tmp_path, monkeypatch):
    """The trained state is saved before scoring starts (issue 17, item 6): a run killed while scoring is not
    trained again, and scores what an uncrashed run scores."""
    from bench.engine import execute

    monkeypatch.setattr(execute, "RESUME_BEFORE_SCORING_S", 0.0)  # a few steps stand for a long training
    args = ("run", "--methods", "pix2pix", "--dataset", "sample", "--size", "32", "--budget", "4steps", "--seeds", "1",
            "--device", "cpu", "--metrics", "psnr", "-o", "ngf=4", "-o", "ndf=4", "--json")
    code, stdout, _ = run_cli(*args, "--out", tmp_path / "whole")
    assert code == 0
    (whole,) = json.loads(stdout)
    score = execute.score_method

    def dies_while_scoring(*a, **k):  # a kill once scoring has begun
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "score_method", dies_while_scoring)
    assert run_cli(*args, "--out", tmp_path / "crashed")[0] == 130
    (folder,) = find_runs(tmp_path / "crashed", "sample", "pix2pix", 0)
    assert (folder / "resume.pt").is_file() and not (folder / RESULT_FILE).exists()
    monkeypatch.setattr(execute, "score_method", score)
    trained = []
    monkeypatch.setattr(execute, "train", lambda *a, **k: trained.append(1))
    code, stdout, err = run_cli(*args, "--out", tmp_path / "crashed")
    (again,) = json.loads(stdout)
    assert code == 0 and not trained and again["action"] == "resumed at scoring (trained 4 steps)"
    assert again["metrics"] == whole["metrics"]
    assert not (folder / "resume.pt").exists()  # gone with the result
