"""``bench run --tensorboard``: losses and sample grids in each run's folder, the same numbers, one-line error
without the package. The event files are read back with TensorBoard's own reader."""

import io
import json
import sys
import time

import pytest
import torch
from PIL import Image

from tests.helpers import find_runs

RUN = ["run", "--methods", "unet-l2", "--dataset", "sample", "--size", "32", "--budget", "6steps", "--seeds", "1",
       "--device", "cpu", "--metrics", "psnr", "-o", "ngf=4", "--checkpoint-every", "0.0001"]


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})  # 0: keep every event
    accumulator.Reload()
    return accumulator


def run_folder(out):
    (folder,) = find_runs(out, "sample", "unet-l2", 0)
    return folder, json.loads((folder / "result.json").read_text())


def test_tensorboard_shows_losses_and_samples_and_changes_no_number(run_cli, tmp_path):
    pytest.importorskip("tensorboard")
    code, _, err = run_cli(*RUN, "--tensorboard", "--out", tmp_path / "live")
    assert code == 0, err
    folder, result = run_folder(tmp_path / "live")
    seen = events(folder / "tensorboard")
    losses = seen.Scalars("loss/G_L2")
    assert [e.step for e in losses] == list(range(1, 7))
    assert [e.value for e in losses] == pytest.approx(result["history"]["losses"]["G_L2"])
    # wall time: the budget clock (the history's times are rounded to 0.1 ms)
    assert [e.wall_time for e in losses] == pytest.approx(result["history"]["time"], abs=1e-4)
    grids = seen.Images("samples")
    assert grids[-1].step == 6 and len({e.step for e in grids}) == len(grids)  # the end, each step once
    grid = Image.open(io.BytesIO(grids[-1].encoded_image_string))
    assert grid.size == (3 * 32, 4 * 32)  # gray | prediction | truth, one row per sample

    # The same run without it: the same numbers (unet-l2 is random at test time), and the same run identity.
    code, _, err = run_cli(*RUN, "--out", tmp_path / "plain")
    assert code == 0, err
    plain_folder, plain = run_folder(tmp_path / "plain")
    assert not (plain_folder / "tensorboard").exists()
    assert plain["metrics"] == result["metrics"] and plain["per_image"] == result["per_image"]
    assert plain["history"]["losses"] == result["history"]["losses"] and plain["run_key"] == result["run_key"]
    code, stdout, _ = run_cli(*RUN, "--tensorboard", "--out", tmp_path / "plain", "--json")
    assert code == 0 and json.loads(stdout)[0]["action"] == "skipped (already done)"


def test_a_resumed_run_drops_the_events_past_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    from bench.engine.live import LiveView

    images = torch.zeros(8, 3, 16, 16, dtype=torch.uint8)
    first = LiveView(tmp_path, None, images, seed=0, first_step=1)
    first.losses([(step, step / 10, {"L": 1.0}) for step in range(1, 11)])  # killed at step 10, checkpoint at 4
    first.close()
    resumed = LiveView(tmp_path, None, images, seed=0, first_step=5)
    resumed.losses([(step, step / 10, {"L": 2.0}) for step in range(5, 8)])
    resumed.close()
    scalars = events(tmp_path / "tensorboard").Scalars("loss/L")
    assert [(e.step, e.value) for e in scalars] == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0), (5, 2.0), (6, 2.0), (7, 2.0)]


def test_writing_events_is_not_charged_to_the_budget(monkeypatch):
    from bench import registry
    from bench.data import BatchSampler
    from bench.engine import training
    from bench.engine.budget import Budget

    method = registry.create_method("unet-l2", size=32, ngf=4)
    sampler = BatchSampler(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), size=32, batch_size=2, seed=0,
                           device="cpu")
    clock = [0.0]  # each write takes 100 s of this clock: a charged write could not hide in a busy CPU's noise
    real = time.perf_counter
    monkeypatch.setattr(time, "perf_counter", lambda: real() + clock[0])
    flushed = []

    def slow_writer(rows):
        flushed.extend(step for step, _, _ in rows)
        clock[0] += 100.0

    # A checkpoint due at every step: a flush (and a slow write) after each of the 5 steps.
    record = training.train(method, sampler, Budget.parse("5steps"), on_flush=slow_writer,
                            on_checkpoint=lambda record: None, checkpoint_every=1e-9)
    assert flushed == [1, 2, 3, 4, 5]
    assert record.seconds < 100  # 500 s of writing, none of it on the budget's clock


def test_without_the_package_it_is_one_line_before_training(run_cli, tmp_path, monkeypatch):
    for name in ("tensorboard", "torch.utils.tensorboard"):  # None in sys.modules: the import fails
        monkeypatch.setitem(sys.modules, name, None)
    code, _, err = run_cli(*RUN, "--tensorboard", "--out", tmp_path / "out")
    assert code == 2 and err.strip().count("\n") == 0, err
    assert "pip install 'colorbench[tensorboard]'" in err
    assert not (tmp_path / "out" / "sample").exists()
