"""A full disk (issue 17, item 9), injected in-process: said as "no space left on device" in one line, naming the
file; nothing finished is lost; a re-run with nothing to do writes nothing and still succeeds."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.store import atomic, digest, index, results
from bench.store.lock import run_lock
from tests.helpers import find_runs

RUN = ("run", "--methods", "unet-l2", "--dataset", "sample", "--size", "32", "--budget", "3steps", "--seeds", "1",
       "--device", "cpu", "--metrics", "psnr", "-o", "ngf=4", "--samples", "1", "--json")


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def files(*folders: Path) -> dict:
    """(size, mtime) of every file below the folders: what a command wrote shows here."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for folder in folders for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_full_disk_while_writing_resume_state_is_one_line_naming_the_file(run_cli, tmp_path, monkeypatch):
    real_save = digest.torch.save

    def full_for_resume(payload, handle):
        if "resume.pt" in handle.name:
            disk_full()
        real_save(payload, handle)

    monkeypatch.setattr(digest.torch, "save", full_for_resume)
    code, stdout, err = run_cli(*RUN, "--out", tmp_path / "runs", "--checkpoint-every", "0.0001")  # every step
    (printed,) = json.loads(stdout)
    assert code == 3 and printed["status"] == "failed"
    assert printed["error"].startswith("cannot write ") and printed["error"].endswith(
        "/seed0/resume.pt: no space left on device")
    assert "unexpected pos" not in err and "Traceback" not in err


def test_a_result_that_cannot_be_written_is_said_and_runs_again(run_cli, tmp_path, monkeypatch):
    real_write = results.atomic_write_text

    def full_for_the_run(path, text):
        if "unet-l2" in str(path):  # the reference rows are written first, and fit
            disk_full()
        return real_write(path, text)

    with monkeypatch.context() as patch:
        patch.setattr(results, "atomic_write_text", full_for_the_run)
        code, stdout, err = run_cli(*RUN, "--out", tmp_path / "runs")
    (printed,) = json.loads(stdout)
    assert code == 3 and "its result could not be written (no space left on device): it runs again" in printed["error"]
    code, stdout, _ = run_cli(*RUN, "--out", tmp_path / "runs")
    assert code == 0 and json.loads(stdout)[0]["status"] == "ok"


def test_a_rerun_with_nothing_to_do_writes_nothing_even_on_a_full_disk(run_cli, tmp_path, monkeypatch):
    out, cache = tmp_path / "runs", Path(os.environ["COLORBENCH_CACHE"])
    assert run_cli(*RUN, "--out", out)[0] == 0
    before = files(out, cache)
    code, stdout, _ = run_cli(*RUN, "--out", out)
    assert code == 0 and json.loads(stdout)[0]["action"] == "skipped (already done)"
    written = {path for path, stat in files(out, cache).items() if before.get(path) != stat}
    # Only the lock's holder text, rewritten in place (no new block), and SQLite's shared-memory files.
    assert {Path(p).name for p in written} <= {".seed0.lock", "runs.sqlite-shm", "runs.sqlite-wal"}
    # Now with the disk full: every write fails, the index cannot even be opened.
    for target, name in ((atomic, "atomic_write"), (os, "replace"), (os, "pwrite")):
        monkeypatch.setattr(target, name, disk_full)
    monkeypatch.setattr(index, "_open", lambda path: (_ for _ in ()).throw(BenchError(f"{path}: disk I/O error")))
    code, stdout, err = run_cli(*RUN, "--out", out)
    assert code == 0 and json.loads(stdout)[0]["action"] == "skipped (already done)"
    assert "warning: the run index was not updated" in err and "Traceback" not in err


def test_the_lock_holds_when_its_holder_text_cannot_be_written(tmp_path, monkeypatch):
    from bench.store.lock import RunLocked

    monkeypatch.setattr(os, "pwrite", disk_full)
    with run_lock(tmp_path / "seed0"):
        with pytest.raises(RunLocked):
            with run_lock(tmp_path / "seed0"):
                pass


def test_a_full_disk_elsewhere_is_one_line_not_a_traceback(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "atomic_write", disk_full)  # e.g. the reference rows, before any run
    code, _, err = run_cli(*RUN, "--out", tmp_path / "runs")
    assert code in (2, 3) and "no space left on device" in err and "Traceback" not in err
    assert not find_runs(tmp_path / "runs", "sample", "unet-l2")
