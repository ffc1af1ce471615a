"""Nothing lost, nothing wrong (issue 17), the run store: one damaged result.json costs one run, the index is a
cache of the files (a damaged or foreign runs.sqlite is set aside and rebuilt; rows are compared by content; a
rebuild keeps what a concurrent writer committed), and `bench run` repairs what it finds and exits 3 when a run
failed. Faults are injected in-process."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.api import Method
from bench.store import index
from bench.store.results import load_results, read_result, write_result

DAMAGES = {
    "truncated": lambda path: path.write_text(path.read_text()[:30]),
    "not UTF-8": lambda path: path.write_bytes(b"\xff\xfe" + path.read_bytes()),
    "a JSON list": lambda path: path.write_text("[1, 2, 3]\n"),
}


def result(status: str = "ok", psnr: float = 20.0, steps: int = 30) -> dict:
    return {"method": "m", "dataset": "d", "status": status, "run_key": "k", "created": "2025-01-01",
            "budget": {"kind": "steps", "value": 30, "used": steps, "steps": steps},
            "metric_details": {"psnr": {"value": psnr, "status": "ok"}}}


def write(out: Path, name: str, **fields) -> Path:
    folder = write_result(out / "d" / name, result(**fields)).parent
    index.sync_folder(out, folder)  # as the launcher does after a run
    return folder


def warnings(err: str, about: str = "") -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:") and about in line]


def test_a_damaged_result_is_one_line_and_reads_as_absent(tmp_path, capsys):
    from bench.store.results import DamagedResult

    folders = {name: write(tmp_path, name.replace(" ", "-")) for name in DAMAGES}
    good = write(tmp_path, "good")
    capsys.readouterr()
    for name, damage in DAMAGES.items():
        damage(folders[name] / "result.json")
        assert read_result(folders[name]) is None, name  # not done: its run is done again
        with pytest.raises(DamagedResult):
            read_result(folders[name], strict=True)
    said = warnings(capsys.readouterr().err, "result.json")
    assert len(said) == 3 and all("result.json" in line and "done again" in line for line in said)
    damaged: list = []
    assert [r["_dir"] for r in load_results(tmp_path, damaged)] == [str(good)]  # the others are kept
    assert sorted(p.parent.name for p, _ in damaged) == ["a-JSON-list", "not-UTF-8", "truncated"]
    assert all("\n" not in reason for _, reason in damaged)


def _damage_index(out: Path, kind: str) -> bytes:
    path = out / "runs.sqlite"
    for journal in ("-wal", "-shm"):
        Path(f"{path}{journal}").unlink(missing_ok=True)
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(8192))
    else:  # someone else's SQLite file under our name
        path.unlink()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE photos (name TEXT, taken TEXT)")
        db.commit()
        db.close()
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["random bytes", "foreign sqlite"])
def test_a_damaged_or_foreign_index_is_set_aside_and_rebuilt_by_every_command(run_cli, capsys, tmp_path, kind):
    for k in range(3):
        write(tmp_path, f"r{k}", psnr=20.0 + k)
    commands = {"bench run (writes a row)": lambda: write(tmp_path, "r3"),
                "bench index": lambda: run_cli("index", "--runs", tmp_path),
                "bench index --rebuild": lambda: run_cli("index", "--runs", tmp_path, "--rebuild")}
    for number, (command, call) in enumerate(commands.items(), start=1):
        content = _damage_index(tmp_path, kind)
        outcome = call()
        code, _, err = outcome if isinstance(outcome, tuple) else (0, None, capsys.readouterr().err)
        assert code == 0, (command, err)
        said = warnings(err, "runs.sqlite")
        assert len(said) == 1 and "moved aside to runs.sqlite.damaged-" in said[0], (command, err)
        asides = [p for p in tmp_path.glob("runs.sqlite.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
        assert len(asides) == number and content in {p.read_bytes() for p in asides}, command  # kept, not lost
        state = index.check(tmp_path)
        assert state["files"] == state["rows"] == 4, (command, state)
        assert not state["missing"] and not state["stale"] and not state["differs"], (command, state)


def test_index_check_compares_contents_and_rebuild_repairs(run_cli, tmp_path):
    for k in range(3):
        write(tmp_path, f"r{k}", psnr=20.0 + k)
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    with db:  # paths all match; the contents do not
        db.execute("UPDATE runs SET status = 'failed', steps = 3 WHERE path = 'd/r1'")
        db.execute("UPDATE metrics SET value = 99.5 WHERE path = 'd/r2'")
    db.close()
    code, stdout, _ = run_cli("index", "--runs", tmp_path)
    assert code == 1, stdout
    assert "differs from its result file: d/r1" in stdout
    assert "status: 'failed' in the index, 'ok' in the file" in stdout and "steps: 3 in the index, 30 in the file" in stdout
    assert ("differs from its result file: d/r2 (metric psnr: [99.5, 'ok'] in the index, [22.0, 'ok'] in the file)"
            in stdout)
    code, stdout, _ = run_cli("index", "--runs", tmp_path, "--json")
    assert code == 1 and [d["path"] for d in json.loads(stdout)["differs"]] == ["d/r1", "d/r2"]
    assert run_cli("index", "--runs", tmp_path, "--rebuild")[0] == 0
    code, stdout, _ = run_cli("index", "--runs", tmp_path)
    assert code == 0 and "differs" not in stdout


def test_rebuild_keeps_what_a_concurrent_writer_committed(tmp_path, monkeypatch):
    write(tmp_path, "r0")
    write(tmp_path, "r1")
    scan = index.load_results

    def scan_then_a_writer_commits(*args, **kwargs):
        found = scan(*args, **kwargs)
        write(tmp_path, "late")  # a concurrent `bench run`: its file, then its row, after the scan read the files
        write(tmp_path, "r1", status="failed", steps=7)  # and a run it replaced
        return found

    monkeypatch.setattr(index, "load_results", scan_then_a_writer_commits)
    index.rebuild(tmp_path)
    state = index.check(tmp_path)
    assert state["rows"] == 3 and not state["missing"] and not state["differs"], state
    assert not list(tmp_path.glob(".runs.sqlite*.tmp*")), "the new file built beside it is gone"


def test_sync_writes_a_missing_or_stale_row_only(tmp_path):
    folder = write(tmp_path, "r0")
    finished = read_result(folder)
    assert index.sync_result(tmp_path, folder / "result.json", finished) is False  # in step: nothing written
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    with db:
        db.execute("UPDATE metrics SET value = 1.5")  # a stale row
    assert index.sync_result(tmp_path, folder / "result.json", finished) is True
    with db:
        db.execute("DELETE FROM runs")  # a missing row
    assert index.sync_result(tmp_path, folder / "result.json", finished) is True
    db.close()
    state = index.check(tmp_path)
    assert state["rows"] == 1 and not state["differs"] and not state["missing"]


class Exploding(Method):
    name = "exploding"

    def train_step(self, batch):
        raise RuntimeError("boom in training")


def test_bench_run_redoes_damaged_results_repairs_the_index_and_exits_3_on_failure(run_cli, tmp_path, extra_methods):
    extra_methods(Exploding)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        rgb = np.random.default_rng(i).integers(0, 256, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(photos / f"{i}.png")
    (photos / "loop.jpg").symlink_to("loop.jpg")  # a symlink loop among the images: skipped, with a reason
    out = tmp_path / "runs"
    common = ("--dataset", f"folder:{photos}", "--dataset-option", "test_fraction=0.5", "--size", "16",
              "--budget", "1steps", "--device", "cpu", "--metrics", "psnr", "--seeds", "2", "--out", out, "--json",
              "-o", "width=4", "-o", "depth=1", "-o", "batch_size=2")  # a tiny network: seconds on a CPU
    code, _, err = run_cli("run", "--methods", "baseline", *common)
    assert code == 0, err
    assert "folder: skipped loop.jpg: a symbolic link loop" in err
    seeds = sorted((out / "folder" / "baseline").glob("*/seed*"))
    references = sorted((out / "folder" / "_reference").glob("*/*"))
    assert len(seeds) == 2 and [r.name for r in references] == ["gray", "truth"]

    DAMAGES["truncated"](seeds[0] / "result.json")  # seed 0: its run is done again
    DAMAGES["not UTF-8"](references[0] / "result.json")  # reference rows too
    DAMAGES["a JSON list"](references[1] / "result.json")
    (seeds[1] / "resume.pt").write_bytes(b"orphan")  # seed 1: finished, an orphaned resume state, no index row
    db = sqlite3.connect(out / "runs.sqlite")
    with db:
        db.execute("DELETE FROM runs WHERE path = ?", (index.index_key(out, seeds[1] / "result.json"),))
    db.close()

    code, stdout, err = run_cli("run", "--methods", "baseline,exploding", *common)
    assert code == 3, err  # the exploding runs failed: not every run is done
    actions = {(r["method"], r["seed"]): (r["action"], r["status"]) for r in json.loads(stdout)}
    assert actions[("baseline", 0)] == ("started", "ok")
    assert actions[("baseline", 1)] == ("skipped (already done)", "ok")
    assert actions[("exploding", 0)][1] == "failed"
    said = warnings(err, "result.json")
    assert len(said) == 3 and all("done again" in line for line in said), said
    for folder in (seeds[0], *references):
        assert json.loads((folder / "result.json").read_text())["status"] == "ok"
    assert not (seeds[1] / "resume.pt").exists()
    state = index.check(out)
    assert not state["missing"] and not state["stale"] and not state["differs"] and not state["damaged"], state

    _damage_index(out, "random bytes")  # every run done: the skip path still opens (and mends) the index
    code, _, err = run_cli("run", "--methods", "baseline", *common)
    assert code == 0 and len(warnings(err, "runs.sqlite")) == 1 and "damaged-" in warnings(err, "runs.sqlite")[0], err
    state = index.check(out)
    assert state["rows"] == state["files"] == 6 and not state["missing"] and not state["differs"], state
    assert os.path.isfile(out / "runs.sqlite")
