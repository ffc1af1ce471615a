"""One run on several devices: torchrun's processes, DistributedDataParallel, sharded evaluation.

``torchrun --nproc-per-node N -m bench run ...`` (or ``bench run --gpus N``, which starts it) runs
``bench run`` in N processes. Each process is one rank of a :class:`World`; the single-process world
(``World()``) makes every call here a no-op, so the engine has one code path.

What the harness does for a method, which needs no code of its own (``parallelize``):

- its networks (``Method.nets``) are wrapped in DistributedDataParallel, and every attribute of the
  method that refers to one of them (``self.G``) is pointed at the wrapper while it trains; the
  ``nets`` dict keeps the bare modules, so checkpoints and evaluation never see the wrapper;
- a frozen network (no parameter requires a gradient: a discriminator during the generator's
  update) is called bare, so DDP never waits for gradients that will not come;
- BatchNorm becomes SyncBatchNorm on CUDA (statistics over the global batch, as one process on
  N x the batch would have them); the CPU cannot synchronise it, so there a BatchNorm method is
  refused, as is any method that sets ``supports_ddp = False``.

The batch stream is sharded by ``bench.data.BatchSampler`` (each rank takes a disjoint slice of the
same seeded global draw), the budget clock agrees across ranks and counts GPU-seconds
(``bench.engine.training``), and rank 0 writes every file (``bench.engine.execute``).
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bench.errors import BenchError

TIMEOUT = dt.timedelta(minutes=60)  # rank 0 alone scores reference rows and writes files meanwhile
# Buffers are not re-broadcast before each forward: SyncBatchNorm keeps running stats equal on every rank.
NO_BUFFER_SYNC = ({"forward_sync_buffers": False}
                  if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
                  else {"broadcast_buffers": False})


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "World":
        """The world torchrun describes in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
        try:
            size = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise BenchError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None
        if size < 1 or not 0 <= rank < size:
            raise BenchError(f"RANK {rank} of WORLD_SIZE {size}: not a rank of that world")
        return cls(rank, size, local)

    def device(self, requested: torch.device) -> torch.device:
        """Each rank's own device: ``cuda:LOCAL_RANK`` for a CUDA run, else the CPU."""
        if not self.distributed or requested.type != "cuda":
            return requested
        if requested.index is not None:
            raise BenchError(f"--device {requested} under torchrun: use --device cuda (rank k takes cuda:LOCAL_RANK)")
        if self.local_rank >= torch.cuda.device_count():
            raise BenchError(f"local rank {self.local_rank} has no GPU: {torch.cuda.device_count()} visible; "
                             "start no more processes per node than GPUs")
        return torch.device("cuda", self.local_rank)

    def init(self, device: torch.device) -> None:
        """Join the process group: NCCL between GPUs, gloo on the CPU."""
        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT,
                                **({"device_id": device} if device.type == "cuda" else {}))

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    # -- collectives (no-ops in a world of one) ------------------------------------------------------
    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
        return tensor

    def shard(self, count: int) -> range:
        """This rank's contiguous share of ``count`` items (the first ranks take one more)."""
        per, extra = divmod(count, self.size)
        start = self.rank * per + min(self.rank, extra)
        return range(start, start + per + (self.rank < extra))

    def gather(self, tensor: torch.Tensor, count: int) -> torch.Tensor:
        """Every rank's ``shard(count)`` rows, concatenated in rank order (on every rank)."""
        if not self.distributed:
            return tensor
        longest = -(-count // self.size)
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded)
        sizes = [len(World(k, self.size).shard(count)) for k in range(self.size)]
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])


class _HarnessDDP(DistributedDataParallel):
    """DDP that calls a frozen network bare: its output needs no gradient synchronisation."""

    def forward(self, *inputs, **kwargs):
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*inputs, **kwargs)
        return super().forward(*inputs, **kwargs)


def _swap_batchnorm(net: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every BatchNorm by a SyncBatchNorm sharing its parameters and buffers; returns what to put back."""
    swapped = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
                synced = nn.SyncBatchNorm.convert_sync_batchnorm(child)  # shares weight, bias and running stats
                synced.train(child.training)
                setattr(parent, name, synced)
                swapped.append((parent, name, child))
    return swapped


def uses_batchnorm(method) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for net in method.nets.values() for m in net.modules())


def check_supported(method_cls, device: torch.device, world: World) -> None:
    """Refuse, before any training, a method that cannot train on several ranks."""
    if world.distributed and not getattr(method_cls, "supports_ddp", True):
        raise BenchError(f"{method_cls.name} does not support training on several devices (supports_ddp = False); "
                         "run it without torchrun / --gpus")


@contextmanager
def parallelize(method, world: World):
    """Inside this block ``method`` trains data-parallel over ``world``; afterwards it is bare again."""
    if not world.distributed:
        yield method
        return
    check_supported(type(method), method.device, world)
    if method.device.type != "cuda" and uses_batchnorm(method):
        raise BenchError(f"{method.name} uses BatchNorm, which several processes can synchronise only on CUDA "
                         "(SyncBatchNorm); on the CPU train it in one process")
    swapped = [entry for net in method.nets.values() for entry in _swap_batchnorm(net)]
    device_ids = [method.device.index] if method.device.type == "cuda" else None
    wrappers = {name: _HarnessDDP(net, device_ids=device_ids, **NO_BUFFER_SYNC)
                for name, net in method.nets.items() if any(p.requires_grad for p in net.parameters())}
    bare = {id(net): wrappers[name] for name, net in method.nets.items() if name in wrappers}
    redirected = {attr: value for attr, value in vars(method).items() if id(value) in bare}
    for attr, net in redirected.items():
        setattr(method, attr, bare[id(net)])
    try:
        yield method
    finally:
        for attr, net in redirected.items():
            setattr(method, attr, net)
        for parent, name, original in swapped:
            setattr(parent, name, original)
