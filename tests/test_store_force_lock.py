"""Replace, never delete first (issue 17, item 1) and one run, one trainer (item 7): `--force` trains beside the
finished run and swaps the replacement in whole; a run folder is locked while a process trains or scores it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench.engine import execute
from bench.store import index, results
from bench.store.lock import lock_path, run_lock
from tests.helpers import find_runs

RUN = ("run", "--methods", "pix2pix", "--dataset", "sample", "--size", "32", "--budget", "3steps", "--seeds", "1",
       "--device", "cpu", "--metrics", "psnr", "-o", "ngf=4", "-o", "ndf=4", "--samples", "2")


def snapshot(folder: Path) -> dict:
    """Every file of a run folder with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def index_row(out: Path) -> tuple:
    db = sqlite3.connect(out / "runs.sqlite")
    try:
        return db.execute("SELECT status, steps, created FROM runs WHERE path LIKE '%pix2pix%'").fetchall()
    finally:
        db.close()


@pytest.fixture
def finished(run_cli, tmp_path):
    """A finished run: (out, its folder, its files, its index row)."""
    out = tmp_path / "runs"
    assert run_cli(*RUN, "--out", out)[0] == 0
    (folder,) = find_runs(out, "sample", "pix2pix", 0)
    return out, folder, snapshot(folder), index_row(out)


def test_force_killed_while_its_replacement_trains_or_scores_keeps_the_finished_run(finished, run_cli, monkeypatch):
    out, folder, files, row = finished

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies here

    for moment in ("train", "score_method"):
        with monkeypatch.context() as patch:
            patch.setattr(execute, moment, killed)
            assert run_cli(*RUN, "--out", out, "--force")[0] == 130
        assert snapshot(folder) == files and index_row(out) == row, moment


def test_force_killed_between_the_two_renames_of_its_swap_puts_the_finished_run_back(finished, run_cli, monkeypatch):
    out, folder, files, row = finished
    real_rename = os.rename

    def dies_after_the_first(source, target):
        real_rename(source, target)
        if Path(source) == folder:  # the finished run is aside, the new one not yet in
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", dies_after_the_first)
        assert run_cli(*RUN, "--out", out, "--force")[0] == 130
    assert not folder.exists()  # what the kill left: the old run renamed aside, under the dead process's id
    (aside,) = folder.parent.glob(f".seed0.{os.getpid()}-*.old")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    aside.rename(aside.with_name(aside.name.replace(f".{os.getpid()}-", f".{int(dead.stdout)}-")))
    code, stdout, err = run_cli(*RUN, "--out", out, "--json")  # the next run puts it back, and skips it
    assert code == 0 and json.loads(stdout)[0]["action"] == "skipped (already done)"
    assert "put back the previous version" in err
    assert snapshot(folder) == files and index_row(out) == row


def test_a_failing_replacement_keeps_the_finished_run(finished, run_cli, monkeypatch):
    out, folder, files, row = finished

    def fails(*args, **kwargs):
        raise RuntimeError("boom while scoring")

    monkeypatch.setattr(execute, "score_method", fails)
    code, stdout, err = run_cli(*RUN, "--out", out, "--force", "--json")
    assert code == 3 and json.loads(stdout)[0]["status"] == "failed"
    assert "the --force replacement failed; the finished run in" in err
    assert snapshot(folder) == files and index_row(out) == row
    assert not list(folder.parent.glob(".seed0*replacement"))  # a failed replacement is dropped


def test_a_complete_replacement_is_swapped_in_whole(finished, run_cli):
    out, folder, files, row = finished
    code, stdout, err = run_cli(*RUN, "--out", out, "--force", "--json")
    assert code == 0 and "replaced the finished run" in err
    (new,) = json.loads(stdout)
    on_disk = json.loads((folder / "result.json").read_text())
    assert on_disk["created"] == new["created"] and index_row(out) == [("ok", 3, new["created"])]
    assert set(snapshot(folder)) == set(files)  # result, checkpoint, samples: all of the new run, no resume.pt
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".seed0.") and not p.name.endswith(".lock")]


def test_a_locked_run_is_not_run_and_says_who_holds_it(run_cli, tmp_path):
    out = tmp_path / "runs"
    assert run_cli(*RUN, "--out", out)[0] == 0
    (folder,) = find_runs(out, "sample", "pix2pix", 0)
    (folder / "result.json").unlink()  # not done: the next command would run it
    with run_lock(folder):  # ... but this process holds it
        code, stdout, err = run_cli(*RUN, "--out", out, "--json")
    (printed,) = json.loads(stdout)
    held = f"locked by PID {os.getpid()} on {socket.gethostname()}"
    assert code == 3 and printed["status"] == "locked" and printed["error"].startswith(held)
    assert held in err and "locked: locked" not in err
    assert not (folder / "result.json").exists()  # nothing written by the process that did not run it
    code, stdout, _ = run_cli(*RUN, "--out", out, "--json")  # released: it runs
    assert code == 0 and json.loads(stdout)[0]["status"] == "ok"


def test_a_dead_holders_lock_is_taken_over(run_cli, tmp_path):
    out = tmp_path / "runs"
    assert run_cli(*RUN, "--out", out)[0] == 0
    (folder,) = find_runs(out, "sample", "pix2pix", 0)
    (folder / "result.json").unlink()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from bench.store.lock import run_lock\n"
        f"with run_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, stdout, _ = run_cli(*RUN, "--out", out, "--json")
        assert code == 3 and json.loads(stdout)[0]["error"].startswith(f"locked by PID {holder.pid} on ")
        os.kill(holder.pid, signal.SIGKILL)  # the kernel releases its lock
        holder.wait()
        code, stdout, _ = run_cli(*RUN, "--out", out, "--json")
        assert code == 0 and json.loads(stdout)[0]["status"] == "ok"
    finally:
        holder.kill()
    assert lock_path(folder).is_file()


def test_two_processes_started_together_train_each_run_once(tmp_path):
    """Two identical grids at once (one with --jobs 2): every run is trained by one of them; the other skips it
    (locked, or done)."""
    out = tmp_path / "runs"
    argv = [sys.executable, "-m", "bench", "run", "--methods", "pix2pix,unet-l2", "--dataset", "sample", "--size",
            "32", "--budget", "40steps", "--seeds", "2", "--device", "cpu", "--metrics", "psnr", "-o", "ngf=4",
            "-o", "ndf=4", "--samples", "0", "--out", str(out), "--json"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    # One grid runs its runs in turn, the other on two --jobs workers: overlapping grids, as on a shared --out.
    both = [subprocess.Popen(argv + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for extra in ([], ["--jobs", "2"])]
    trained: dict[str, int] = {}
    for process in both:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode in (0, 3), stderr[-2000:]
        for run in json.loads(stdout):
            key = f"{run['method']} {run['seed']}"
            trained[key] = trained.get(key, 0) + (run["action"] in ("started",) or run["action"].startswith("resumed"))
            assert run["status"] in ("ok", "locked"), run["error"]
    assert trained == {f"{m} {s}": 1 for m in ("pix2pix", "unet-l2") for s in (0, 1)}
    for folder in find_runs(out, "sample", "pix2pix") + find_runs(out, "sample", "unet-l2"):
        assert results.read_result(folder)["status"] == "ok"


@pytest.mark.slow
def test_jobs_workers_skip_a_locked_run_and_the_driver_indexes_nothing_for_it(run_cli, tmp_path):
    out = tmp_path / "runs"
    assert run_cli(*RUN, "--out", out)[0] == 0  # seed 0 (RUN's one seed)
    grid = RUN + ("--seeds", "2", "--out", out, "--json")  # the later --seeds counts
    (seed0,) = find_runs(out, "sample", "pix2pix", 0)
    (seed0 / "result.json").unlink()
    with run_lock(seed0):  # seed 0 is held by this process; the workers run seed 1 only
        code, stdout, err = run_cli(*grid, "--jobs", "2")
    by_seed = {r["seed"]: r for r in json.loads(stdout)}
    assert code == 3 and by_seed[0]["status"] == "locked" and by_seed[1]["status"] == "ok", (by_seed, err)
    assert f"locked by PID {os.getpid()}" in by_seed[0]["error"] and not (seed0 / "result.json").exists()
    db = sqlite3.connect(out / "runs.sqlite")
    rows = {path.rsplit("/", 1)[1]: status
            for path, status in db.execute("SELECT path, status FROM runs WHERE path LIKE '%pix2pix%'")}
    db.close()
    assert rows == {"seed0": "ok", "seed1": "ok"}  # seed 0's row is the first command's: nothing written for "locked"


def test_a_replacement_being_swapped_in_is_not_a_run_of_the_record(finished):
    """Between its result and the swap, a replacement's result.json exists in a hidden folder: the report and the
    index never take it for a run."""
    out, folder, files, row = finished
    replacement = folder.with_name(f".{folder.name}.replacement")
    replacement.mkdir()
    (replacement / "result.json").write_bytes(files["result.json"])
    assert [r["_dir"] for r in results.load_results(out) if "pix2pix" in r["_dir"]] == [str(folder)]
    assert ".replacement" not in json.dumps(index.check(out), default=str)
    assert index.rebuild(out) >= 1 and index_row(out) == row
