"""``bench run --gpus N``: one run on N GPUs of this machine, through torchrun.

``--gpus N`` starts ``python -m torch.distributed.run --standalone --nproc-per-node N -m bench run
...`` with the same arguments (less ``--gpus``); each of its processes joins the run's world
(``join``). Running ``torchrun ... -m bench run ...`` yourself (e.g. under ``srun``, across nodes)
does the same. See ``bench.engine.distributed`` for what the ranks share.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from bench.engine.distributed import World
from bench.errors import BenchError
from bench.progress import set_quiet


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def without_gpus(argv: list[str]) -> list[str]:
    """``argv`` less its ``--gpus N`` / ``--gpus=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--gpus":
            skip = True
        elif not arg.startswith("--gpus="):
            out.append(arg)
    return out


def relaunch(argv: list[str], gpus: int, device: torch.device) -> int:
    """Run ``bench`` + ``argv`` again under torchrun with ``gpus`` processes; its exit status."""
    if device.type != "cuda":
        raise BenchError(f"--gpus {gpus} trains one run on several GPUs; this run is on the {device.type}. "
                         "(To try it with several CPU processes: torchrun --nproc-per-node 2 -m bench run --device cpu …)")
    visible = torch.cuda.device_count()
    if gpus > visible:
        raise BenchError(f"--gpus {gpus}: only {visible} GPU(s) visible here (CUDA_VISIBLE_DEVICES chooses them)")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
               "-m", "bench", *without_gpus(argv)]
    return subprocess.call(command)


def join(device: torch.device) -> tuple[World, torch.device]:
    """This process's rank under torchrun (``World()`` otherwise) and its device; ranks > 0 stay quiet."""
    world = World.from_env()
    device = world.device(device)
    world.init(device)
    if not world.is_main:
        set_quiet(True)
    return world, device
