"""Pix2Pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks")
as used for colorization: a U-Net maps L to ab, a 70x70 PatchGAN judges (L, ab) pairs, and the
generator minimises cGAN + lambda * L1 (lambda = 100) — and ``unet-l2``, the same generator trained
with L2 alone (the L2 baseline of the L2-vs-cGAN colorization report: what the GAN adds).

:class:`ConditionalGAN` holds the pix2pix objective and update order (junyanz ``pix2pix_model``:
D on the detached fake, then G against the frozen D); generators built on it only say which
network maps L to ab. ``pix2pix-resnet18`` (``pix2pix_resnet18.py``) reuses it with another
generator and a staged loss. :class:`PaperUnet` is the one code path that builds, checks and runs
the pix2pix U-Net, for ``pix2pix`` and ``unet-l2`` alike.

Defaults follow the paper; the departures are options:

* ``batch_size=1`` (the paper's experiments and the junyanz default; BatchNorm over one image is
  then instance normalisation). ``-o batch_size=4`` was this suite's earlier default.
* ``test_mode=paper``: at test time the generator runs as in training, dropout on and BatchNorm on
  batch statistics (the paper: "we apply dropout at test time, and we apply batch normalization
  using the statistics of the test batch"; the junyanz test script without ``--eval``). The
  reference tests one image per batch, so here each test image is colorized on its own: its
  colours depend on its own statistics and the dropout draw, never on which images share its
  evaluation batch, and ``--eval-batch-size`` changes nothing. Running statistics are left as
  trained. ``test_mode=eval`` uses the running statistics and no dropout (deterministic).
* ``dropout_placement=paper``: dropout 0.5 in the three decoder blocks nearest the bottleneck
  (inputs 1x1, 2x2, 4x4; ``networks.unet_dropout_blocks``); ``junyanz`` moves it one block out, as
  the reference code (none at 32 px).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import Batch, BenchError, Method, MethodOptions, hookimpl, positive
from bench.methods.networks import (
    GANLoss,
    adam,
    batch_statistics_only,
    NLayerDiscriminator,
    UnetGenerator,
    init_weights,
    optimize,
    patchgan_min_size,
    set_requires_grad,
    unet_dropout_blocks,
    unet_levels,
)


@dataclass
class ConditionalGANOptions(MethodOptions):
    lambda_l1: float = 100.0
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"
    # Target for real pairs when training D; 0.9 = one-sided label smoothing (Salimans et al. 2016).
    real_label: float = 1.0
    ndf: int = 64
    n_layers_d: int = 3  # 3 = the 70x70 PatchGAN

    def validate(self) -> None:
        super().validate()
        positive("ndf", self.ndf)
        positive("n_layers_d", self.n_layers_d)
        if self.lambda_l1 < 0:
            raise BenchError(f"option lambda_l1 must be >= 0, got {self.lambda_l1}")
        if not 0.5 < self.real_label <= 1.0:
            raise BenchError(f"option real_label must be in (0.5, 1], got {self.real_label} (0.9 = label smoothing)")


class ConditionalGAN(Method):
    """The pix2pix objective around any L -> ab generator (subclasses provide ``build_generator``)."""

    Options = ConditionalGANOptions
    inference_nets = ("G",)  # D only trains

    @classmethod
    def check_size(cls, size: int, options: ConditionalGANOptions) -> None:
        super().check_size(size, options)
        smallest = patchgan_min_size(options.n_layers_d)
        if size < smallest:
            raise BenchError(f"{cls.name}: size {size} is below {smallest}, the smallest the "
                             f"{options.n_layers_d}-layer PatchGAN accepts")

    def __init__(self, options: ConditionalGANOptions, context):
        super().__init__(options, context)
        self.G = self.build_generator().to(self.device)
        self.D = init_weights(NLayerDiscriminator(1 + 2, options.ndf, options.n_layers_d)).to(self.device)
        self.nets = {"G": self.G, "D": self.D}
        self.optimizers = {
            "G": adam(self.G.parameters(), options.lr),
            "D": adam(self.D.parameters(), options.lr),
        }
        self.gan_loss = GANLoss(options.gan_mode, options.real_label)

    def build_generator(self) -> nn.Module:
        raise NotImplementedError

    def adversarial_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One pix2pix update: D on real vs. detached fake pairs, then G on cGAN + lambda * L1."""
        fake_ab = self.G(batch.L)
        set_requires_grad([self.D], True)
        loss_fake = self.gan_loss(self.D(torch.cat([batch.L, fake_ab.detach()], 1)), False, discriminator=True)
        loss_real = self.gan_loss(self.D(torch.cat([batch.L, batch.ab], 1)), True, discriminator=True)
        loss_D = 0.5 * (loss_fake + loss_real)  # halved so D learns slower than G, as in the paper
        optimize(self.optimizers["D"], loss_D)

        set_requires_grad([self.D], False)
        loss_gan = self.gan_loss(self.D(torch.cat([batch.L, fake_ab], 1)), True)
        loss_l1 = F.l1_loss(fake_ab, batch.ab)
        optimize(self.optimizers["G"], loss_gan + self.options.lambda_l1 * loss_l1)
        set_requires_grad([self.D], True)
        return {"G_GAN": loss_gan.detach(), "G_L1": loss_l1.detach(),
                "D_real": loss_real.detach(), "D_fake": loss_fake.detach()}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.adversarial_step(batch)

    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        return self.G(L)


# -- the pix2pix U-Net generator, shared by pix2pix and unet-l2 ------------------------------------


@dataclass
class PaperUnetOptions(MethodOptions):
    """The generator's options and its training settings (the paper's): Adam 2e-4, betas (0.5, 0.999)."""

    batch_size: int = 1
    ngf: int = 64
    dropout: bool = True
    dropout_placement: Literal["paper", "junyanz"] = "paper"
    test_mode: Literal["paper", "eval"] = "paper"

    def validate(self) -> None:
        super().validate()
        positive("ngf", self.ngf)


class PaperUnet:
    """Mixin (before the Method base): builds ``self.G`` as the pix2pix U-Net, refuses sizes it
    cannot take, and runs it at test time as ``test_mode`` says."""

    @classmethod
    def check_size(cls, size: int, options: PaperUnetOptions) -> None:
        try:
            unet_levels(size)
        except ValueError as error:
            raise BenchError(f"{cls.name}: {error}") from None
        super().check_size(size, options)

    def build_generator(self) -> UnetGenerator:
        options = self.options
        levels = unet_levels(self.size)  # 8 at 256 (U-Net-256): a 1x1 bottleneck
        dropout_blocks = unet_dropout_blocks(levels, options.dropout_placement) if options.dropout else ()
        return init_weights(UnetGenerator(1, 2, levels, options.ngf, dropout_blocks=dropout_blocks))

    @property
    def random_at_test_time(self) -> bool:
        return self.options.test_mode == "paper" and self.options.dropout

    def eval_mode(self) -> None:
        super().eval_mode()
        if self.options.test_mode == "paper":
            self.G.train()  # dropout and batch statistics at test time, as in the paper

    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if not self.G.training:
            return self.G(L)
        # Batch statistics (paper mode): one image per batch, as the reference tests, so an image's
        # colours do not depend on the others in its evaluation batch; running statistics untouched.
        with batch_statistics_only(self.G):
            return torch.cat([self.G(image) for image in L.split(1)])


@dataclass
class Pix2PixOptions(PaperUnetOptions, ConditionalGANOptions):
    pass


class Pix2Pix(PaperUnet, ConditionalGAN):
    name = "pix2pix"
    description = "Pix2Pix (Isola et al. 2017): U-Net generator, 70x70 PatchGAN, cGAN + 100*L1"
    Options = Pix2PixOptions


class UnetL2(PaperUnet, Method):
    """The pix2pix generator, options and optimiser, trained on MSE(G(L), ab) alone: no discriminator."""

    name = "unet-l2"
    description = "the pix2pix U-Net trained with L2 only (no GAN): the L2 baseline of the L2-vs-cGAN comparison"
    Options = PaperUnetOptions

    def __init__(self, options: PaperUnetOptions, context):
        super().__init__(options, context)
        self.G = self.build_generator().to(self.device)
        self.nets = {"G": self.G}
        self.optimizers = {"G": adam(self.G.parameters(), options.lr)}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        loss = F.mse_loss(self.G(batch.L), batch.ab)
        optimize(self.optimizers["G"], loss)
        return {"G_L2": loss.detach()}


@hookimpl
def register_methods(register):
    register(Pix2Pix)
    register(UnetL2)
