"""The interface the harness drives for every colorization method.

A method sees only normalised Lab tensors (see ``bench.color``): it learns ``ab`` from ``L``.
Subclass :class:`Method`, declare options as a dataclass named ``Options`` (subclassing
:class:`MethodOptions`), implement ``train_step`` and ``colorize``, and register the class from a
``register_methods`` hook. The harness:

1. calls ``check_size(size, options)``, which may refuse the size, then builds the method
   (``Method(options, context)``) after seeding torch -- the harness alone checks sizes;
2. calls ``train_mode()`` once, then takes :func:`training_step` until the budget is spent: it sets
   the learning rates for ``progress`` (0 to 1) and calls the method's ``train_step``, the one step a
   method writes;
3. calls ``colorize(L)`` on the test split under ``torch.no_grad()``, after ``eval_mode()``;
4. saves ``state_dict()``; ``load_state_dict`` restores it (also for ``bench colorize``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from bench.options import Options, fraction, positive


@dataclass
class Batch:
    """One training batch on the training device, normalised Lab.

    ``L`` (N, 1, H, W) and ``ab`` (N, 2, H, W) are the same images. For methods with
    ``unpaired = True`` the harness also fills ``color_L``/``color_ab``: colour images drawn
    independently of ``L``, so an image's gray and colour versions are not shown together.
    """

    L: torch.Tensor
    ab: torch.Tensor
    color_L: torch.Tensor | None = None
    color_ab: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.L.shape[0]

    @property
    def images(self) -> int:
        """Images this batch consumes: a paired image counts once, an independent colour image too."""
        return len(self) + (self.color_L.shape[0] if self.color_L is not None else 0)


@dataclass
class MethodContext:
    """What the harness tells a method about where it runs.

    ``weights`` resolves pretrained files (``bench.weights``); it is ``None`` when the method is
    being restored from a checkpoint, which already holds every weight.
    """

    size: int
    device: torch.device | str = "cpu"
    weights: Any = None

    def __post_init__(self):
        self.device = torch.device(self.device)


@dataclass
class MethodOptions(Options):
    batch_size: int = 16
    lr: float = 2e-4
    # Learning rate is constant for the first `decay_start` of the budget, then decays linearly
    # to zero by its end (the reference pix2pix/CycleGAN "linear" policy, fitted to the budget).
    decay_start: float = 0.5

    def validate(self) -> None:
        positive("batch_size", self.batch_size)
        positive("lr", self.lr)
        fraction("decay_start", self.decay_start)


def linear_decay(progress: float, decay_start: float) -> float:
    """1 until ``decay_start``, then linearly down to 0 at progress 1."""
    if progress <= decay_start or decay_start >= 1.0:
        return 1.0
    return max(0.0, 1.0 - (progress - decay_start) / (1.0 - decay_start))


class Method:
    """Base class of colorization methods."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    # True: batches carry an independently drawn colour batch (see Batch).
    unpaired: ClassVar[bool] = False
    # False: `bench run --compile` leaves this method's networks eager (e.g. data-dependent control flow).
    supports_compile: ClassVar[bool] = True
    # False: the method refuses one run on several devices (torchrun / --gpus), e.g. state that must not be
    # shared across ranks. The harness wraps `nets` in DistributedDataParallel; methods need no DDP code.
    supports_ddp: ClassVar[bool] = True

    def __init__(self, options: MethodOptions, context: MethodContext):
        self.options = options
        self.context = context
        self.size = context.size
        self.device = context.device
        self.progress = 0.0
        # Subclasses fill these; state_dict/load_state_dict and train/eval modes cover them.
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # Whether ``colorize`` draws random numbers (e.g. dropout at test time). The harness then colorizes
    # such a method's test images one at a time, each from a generator seeded by (run seed, image
    # index), so its scores never depend on what the process did before or on the evaluation batch.
    random_at_test_time: bool = False

    # The networks ``colorize`` uses: all that ``checkpoint.pt`` keeps (the full training state -- every
    # network, optimisers, RNG -- lives in ``resume.pt`` only while the run can resume). None: every network.
    inference_nets: tuple[str, ...] | None = None

    # -- what a method implements -------------------------------------------------------------
    @classmethod
    def check_size(cls, size: int, options: MethodOptions) -> None:
        """Raise :class:`bench.errors.BenchError` if this method cannot train at ``size`` px.

        Called by the harness (and ``bench.registry.create_method``) before the method is built.
        """

    def train_step(self, batch: Batch) -> dict[str, float | torch.Tensor]:
        """One optimisation step; returns the losses to log (scalars)."""
        raise NotImplementedError

    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        """Normalised L (N, 1, H, W) -> normalised ab (N, 2, H, W). Called without grad."""
        raise NotImplementedError

    def lr_factor(self, progress: float) -> float:
        """Multiplier on every optimiser's base learning rate at this point of the budget."""
        return linear_decay(progress, self.options.decay_start)

    def extra_state(self) -> dict[str, Any]:
        """State beyond nets, optimisers and torch RNG (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # -- what the harness calls ---------------------------------------------------------------
    def train_mode(self) -> None:
        for net in self.nets.values():
            net.train()

    def eval_mode(self) -> None:
        """Mode for colorizing the test split; default ``eval()`` (running BN stats, no dropout)."""
        for net in self.nets.values():
            net.eval()

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.nets.items()}

    def state_dict(self) -> dict[str, Any]:
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "nets": {name: net.state_dict() for name, net in self.nets.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedule": {"progress": self.progress, "lr_factor": self.lr_factor(self.progress)},
            "rng": rng,
            "extra": self.extra_state(),
        }

    def inference_state_dict(self) -> dict[str, Any]:
        """What colorizing needs: the weights of ``inference_nets`` (``checkpoint.pt``)."""
        return {"nets": {name: self.nets[name].state_dict() for name in self.inference_nets or self.nets}}

    def load_state_dict(self, state: dict[str, Any], *, restore_training: bool = True) -> None:
        """Restore nets (without ``restore_training``: those colorizing needs, ``inference_nets``); with
        ``restore_training`` also every other net, the optimisers, schedule, RNG and extras."""
        for name in self.nets if restore_training else self.inference_nets or self.nets:
            self.nets[name].load_state_dict(state["nets"][name])
        if not restore_training:
            return
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.progress = state["schedule"]["progress"]
        torch.set_rng_state(state["rng"]["cpu"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.load_extra_state(state["extra"])


def training_step(method: Method, batch: Batch, progress: float) -> dict[str, float | torch.Tensor]:
    """The step the harness takes (``progress``: the share of the budget used, 0 to 1): ``method.progress`` set,
    every optimiser group's learning rate set to its initial one times ``lr_factor(progress)`` -- the initial one
    kept in the group as ``initial_lr``, torch's own schedulers' key -- then the method's ``train_step``."""
    method.progress = progress
    factor = method.lr_factor(progress)
    for optimizer in method.optimizers.values():
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
    return method.train_step(batch)
