"""Memory checked before it is used: a one-line refusal up front, never the out-of-memory killer mid-run.

Two checks, each against the memory available *now* (``MemAvailable`` on Linux for the CPU,
``torch.cuda.mem_get_info`` for a GPU):

- ``check_decode``: a split decoded into one uint8 tensor needs images x 3 x side² bytes;
- ``check_training_step``: a *lower bound* of one training step's memory -- the method's weights and
  buffers, plus the largest single operation's batch tensors (inputs and outputs, which must exist at
  once) scaled from a probe batch of ``PROBE_IMAGES`` to the run's batch size. The true peak is higher
  (autograd keeps many activations), so a refusal is certain to be right; what passes may still need
  more than the bound.
"""

from __future__ import annotations

import itertools
import os

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from bench.errors import BenchError
from bench.method import Batch, training_step

PROBE_IMAGES = 3  # the probe batch's size; batch tensors are told apart from weights by this leading dimension


def available_bytes(device: torch.device) -> int | None:
    """Memory a new allocation can take on ``device`` now; None when this platform does not say."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 or unit == "PB":
            return f"{count:.3g} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def check_decode(what: str, images: int, side: int) -> None:
    """Refuse to decode ``images`` images at ``side`` pixels when their uint8 tensor cannot fit in memory."""
    needed, available = images * 3 * side * side, available_bytes(torch.device("cpu"))
    if available is not None and needed > available:
        raise BenchError(f"{what}: {images} images at {side}px need {human_bytes(needed)} of memory decoded, "
                         f"{human_bytes(available)} is available: choose a smaller --size")


class _LargestOperation(TorchDispatchMode):
    """The most bytes of batch tensors (leading dimension ``PROBE_IMAGES``) any one operation touches at once."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        storages = {}
        for leaf in itertools.chain(tree_leaves((args, kwargs)), tree_leaves(out)):
            if isinstance(leaf, torch.Tensor) and leaf.dim() >= 2 and leaf.shape[0] == PROBE_IMAGES:
                storage = leaf.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
        self.largest = max(self.largest, sum(storages.values()))
        return out


def step_lower_bound(method, batch_size: int, size: int, *, autocast) -> int:
    """Bytes one training step at ``batch_size`` needs at least (see the module); runs one step of
    ``PROBE_IMAGES`` gray images, so call it where the method's state is restored afterwards (the probe)."""
    device = method.device
    planes = {name: torch.zeros(PROBE_IMAGES, channels, size, size, device=device)
              for name, channels in (("L", 1), ("ab", 2))}
    batch = Batch(planes["L"], planes["ab"], *((planes["L"].clone(), planes["ab"].clone()) if method.unpaired else ()))
    tracker = _LargestOperation()
    with tracker, autocast:
        training_step(method, batch, 0.0)
    weights = sum(t.numel() * t.element_size() for net in method.nets.values()
                  for t in itertools.chain(net.parameters(), net.buffers()))
    return weights + tracker.largest * batch_size // PROBE_IMAGES


def check_training_step(method, batch_size: int, size: int, *, autocast) -> int:
    """Refuse a batch size whose step cannot fit in the device's memory; returns the lower bound (bytes)."""
    needed = step_lower_bound(method, batch_size, size, autocast=autocast)
    available = available_bytes(method.device)
    if available is not None and needed > available:
        raise BenchError(f"batch size {batch_size} at {size}px needs at least {human_bytes(needed)} of memory for one "
                         f"training step (weights + its largest layer's activations), {human_bytes(available)} is "
                         f"available on {method.device}: use a smaller -o batch_size or --size")
    return needed
