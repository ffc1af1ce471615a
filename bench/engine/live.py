"""``bench run --tensorboard``: watch a run train, in TensorBoard (``tensorboard --logdir runs``).

Each run writes event files to ``<run folder>/tensorboard/`` through torch's ``SummaryWriter``:

- ``loss/<name>`` at every step, written at each flush of the training loop (x = training step; each
  event's wall time is the budget clock in seconds, so TensorBoard's "Relative" axis reads training time);
- ``samples``: a grid of a few fixed test images, one row each (gray input | prediction | truth), at each
  resume checkpoint and at the end of training.

Nothing here changes a run's numbers: samples are colorized under ``torch.no_grad`` with the scoring's
per-image test-time seeds and the process's RNG streams restored, and all of it runs inside the training
loop's flush, outside the budget's timed window (``bench.engine.training``). Rank 0 alone writes.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path

import torch

from bench.color import float_to_uint8, normalized_lab_to_rgb, rgb_to_normalized_lab, uint8_to_float
from bench.errors import BenchError
from bench.evaluation.test_split import gray_uint8, sample_indices
from bench.evaluation.test_time import colorize_seeded

FOLDER = "tensorboard"
SAMPLES = 4  # test images in the grid
INSTALL = "pip install 'colorbench[tensorboard]'"


def check_available() -> None:
    """Fail fast, before any training, when ``SummaryWriter`` cannot be imported."""
    try:
        importlib.import_module("torch.utils.tensorboard")  # imports the tensorboard package
    except ImportError:
        raise BenchError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None


class _Off:
    """No live view (no --tensorboard, or not rank 0): every call is a no-op."""

    def losses(self, rows) -> None:
        pass

    def samples(self, record) -> None:
        pass


class LiveView:
    """One run's TensorBoard writer: ``losses`` is the training loop's ``on_flush``, ``samples`` runs at checkpoints."""

    def __init__(self, folder: Path, method, images: torch.Tensor, *, seed: int, first_step: int):
        check_available()  # a launcher's worker may lack it, though the driver has it
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run's events past its checkpoint (written before the kill) are dropped by
        # TensorBoard, as are an earlier attempt's when the run starts over
        self.writer = SummaryWriter(str(folder / FOLDER), purge_step=first_step, max_queue=1000)
        self.method, self.seed = method, seed
        self.indices = sample_indices(SAMPLES, images.shape[0])
        self.images = images[self.indices]
        self.shown_step = None  # the end of training often falls on a checkpoint: one grid for both

    def losses(self, rows) -> None:
        """``rows``: the flushed steps' (step, budget seconds, {loss: value})."""
        for step, seconds, losses in rows:
            for name, value in losses.items():
                self.writer.add_scalar(f"loss/{name}", value, step, walltime=seconds)
        self.writer.flush()  # written now, in the untimed flush, not by the writer's thread during steps

    def samples(self, record) -> None:
        if record.steps == self.shown_step:
            return
        self.writer.add_image("samples", self._grid(), record.steps, walltime=record.seconds, dataformats="CHW")
        self.writer.flush()
        self.shown_step = record.steps

    def _grid(self) -> torch.Tensor:
        """uint8 (3, rows x H, 3 x W): gray | prediction | truth per sample, colorized as scoring does."""
        method, devices = self.method, [self.method.device] if self.method.device.type == "cuda" else []
        rows = []
        method.eval_mode()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                for index, truth in zip(self.indices, self.images.split(1)):
                    L, _ = rgb_to_normalized_lab(uint8_to_float(truth.to(method.device)))
                    ab = colorize_seeded(method, L, run_seed=self.seed, first_index=index)
                    pred = float_to_uint8(normalized_lab_to_rgb(L, torch.nan_to_num(ab))).cpu()
                    rows.append(torch.cat([gray_uint8(truth)[0], pred[0], truth[0]], dim=2))
        finally:
            method.train_mode()
        return torch.cat(rows, dim=1)

    def close(self) -> None:
        self.writer.close()


@contextlib.contextmanager
def live_view(enabled: bool, folder: Path, method, images: torch.Tensor, *, seed: int, record=None):
    """A :class:`LiveView` while the run trains (``enabled``: --tensorboard on rank 0), else a no-op one.
    ``record``: the training record it resumes from, if any."""
    if not enabled:
        yield _Off()
        return
    view = LiveView(folder, method, images, seed=seed, first_step=(record.steps if record else 0) + 1)
    try:
        yield view
    finally:
        view.close()
