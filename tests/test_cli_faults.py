"""Nothing lost, nothing wrong (issue 17), the commands: `bench colorize` leaves no temporary file when killed,
a symlink loop in a `folder:` dataset is skipped with a reason, a budget the store cannot record is refused in
one line, and status lines say `interrupted` once. Faults are injected in-process."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from bench import registry
from bench.datasets.folder import FolderDataset, find_images
from bench.engine.budget import Budget
from bench.engine.checkpoint import save_checkpoint
from bench.errors import BenchError
from bench.store.identity import RunIdentity, budget_key


def photo(path: Path, seed: int = 0, size=(20, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_colorize_killed_mid_write_leaves_no_temporary_file(run_cli, tmp_path, monkeypatch):
    torch.manual_seed(0)
    checkpoint = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, registry.create_method("baseline", size=32, width=4, depth=1), "baseline", "sample",
                    steps=0)
    photos = tmp_path / "photos"
    for k in range(3):
        photo(photos / f"{k}.png", seed=k)
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".0.png.png.{int(dead.stdout)}-0123abcd.tmp"  # an earlier colorize killed -9 mid-write
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\x89PNG half")
    seen = []
    save = Image.Image.save

    def killed_while_saving(image, fp, *args, **kwargs):
        if str(fp).endswith(".tmp"):  # the output being written: half of it is on disk when the kill comes
            Path(fp).write_bytes(b"\x89PNG half")
            seen.append(signal.getsignal(signal.SIGTERM))
            if not callable(seen[-1]):  # SIGTERM would end the process at once, the temporary file left behind
                raise RuntimeError("no SIGTERM handler while writing")
            signal.raise_signal(signal.SIGTERM)
        return save(image, fp, *args, **kwargs)

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(Image.Image, "save", killed_while_saving)
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, photos, "--out", out)
    assert seen and callable(seen[0]), "SIGTERM is turned into a clean stop while files are written"
    assert code == 130 and "interrupted" in err
    assert [p.name for p in out.rglob("*") if p.is_file()] == []  # neither its own nor the stale temporary file
    assert signal.getsignal(signal.SIGTERM) == previous


def test_a_symlink_loop_in_a_folder_dataset_is_skipped_with_a_reason(tmp_path, monkeypatch):
    for k in range(4):
        photo(tmp_path / f"{k}.png", seed=k)
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    skipped: list = []
    assert [p.name for p in find_images(tmp_path, skipped)] == ["0.png", "1.png", "2.png", "3.png"]
    assert {p.name: reason for p, reason in skipped} == {"loop.jpg": "a symbolic link loop",
                                                         "gone.png": "a broken symbolic link"}
    said = []
    monkeypatch.setattr("bench.datasets.folder.log", said.append)
    dataset = FolderDataset("unused", FolderDataset.Options.from_dict({"path": str(tmp_path)}))
    dataset.cache_key()  # stat()s every image: an OSError before
    assert len(dataset.images("train")) + len(dataset.images("test")) == 4
    assert said == ["folder: skipped loop.jpg: a symbolic link loop",
                    "folder: skipped sub/gone.png: a broken symbolic link"]


@pytest.mark.parametrize("text", ["99999999999999999999steps", "9" * 400 + "s"])
def test_a_budget_the_store_cannot_record_is_refused_in_one_line(text):
    with pytest.raises(BenchError) as refused:
        Budget.parse(text)
    assert text in str(refused.value) and "\n" not in str(refused.value)


def test_status_lines_say_interrupted_once(tmp_path, monkeypatch, capsys):
    from bench.cli.run import exit_status, print_results
    from bench.launch import driver
    from bench.launch.worker import Job

    identity = RunIdentity("sample", {}, 16, budget_key("steps", 3), "baseline", {}, "fp32", "cpu x1", 0)
    result = {"method": "baseline", "dataset": "sample", "seed": 0, "status": "interrupted", "metrics": {},
              "budget": {"steps": 2}, "error": "interrupted: stopped at step 2 (resume with the same command)"}
    lines = []
    monkeypatch.setattr(driver, "log", lines.append)
    launch = driver.Driver(SimpleNamespace(out=tmp_path), [identity], with_references=False)
    launch.finished(Job(identity), result | {"_action": "interrupted"})
    launch.finished(Job(identity), result | {"_action": "resumed at step 1"})
    said = "interrupted: stopped at step 2 (resume with the same command)"
    assert lines == [f"baseline seed 0: {said}", f"baseline seed 0: resumed at step 1 -> {said}"]
    print_results([result | {"action": "interrupted"}])
    out = capsys.readouterr().out
    assert "baseline (seed 0) interrupted: stopped at step 2" in out and "interrupted: interrupted" not in out
    ok = {"status": "ok"}
    assert exit_status([ok, ok]) == 0 and exit_status([ok, result]) == 3
    assert exit_status([ok, {"status": "failed"}]) == 3 and exit_status([{"status": "skipped"}]) == 3
    assert exit_status([ok, {"status": "skipped"}]) == 0
