"""Pix2Pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks")
as used for colorization: a U-Net maps L to ab, a 70x70 PatchGAN judges (L, ab) pairs, and the
generator minimises cGAN + lambda * L1 (lambda = 100).

:class:`ConditionalGAN` holds the pix2pix objective and update order (junyanz ``pix2pix_model``:
D on the detached fake, then G against the frozen D); generators built on it only say which
network maps L to ab. ``pix2pix-resnet18`` (``pix2pix_resnet18.py``) reuses it with another
generator and a staged loss.

Test-time mode (option ``test_mode``): ``eval`` (default) uses BatchNorm running statistics and
no dropout, so a test image's colours do not depend on its batch or on chance; ``paper`` keeps
the generator in training mode at test time as the paper does (dropout on, batch statistics):
dropout is then the noise source at test time too (BatchNorm running statistics then drift with
the test batches, as in the reference's test script without ``--eval``; this mode never uses them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import Batch, BenchError, Method, MethodOptions, hookimpl
from bench.options import positive
from bench.methods.networks import (
    GANLoss,
    adam,
    NLayerDiscriminator,
    UnetGenerator,
    init_weights,
    optimize,
    patchgan_min_size,
    set_requires_grad,
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

    def __init__(self, options: ConditionalGANOptions, context):
        super().__init__(options, context)
        smallest = patchgan_min_size(options.n_layers_d)
        if self.size < smallest:
            raise BenchError(f"{self.name}: size {self.size} is below {smallest}, the smallest the "
                             f"{options.n_layers_d}-layer PatchGAN accepts")
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


@dataclass
class Pix2PixOptions(ConditionalGANOptions):
    # A small batch, as in the paper's experiments (batch sizes 1-10), and quick on a CPU; BatchNorm
    # normalises over it. Override with -o batch_size=N.
    batch_size: int = 4
    ngf: int = 64
    dropout: bool = True  # dropout 0.5 in the three decoder blocks nearest the bottleneck
    test_mode: Literal["eval", "paper"] = "eval"

    def validate(self) -> None:
        super().validate()
        positive("ngf", self.ngf)


class Pix2Pix(ConditionalGAN):
    name = "pix2pix"
    description = "Pix2Pix (Isola et al. 2017): U-Net generator, 70x70 PatchGAN, cGAN + 100*L1"
    Options = Pix2PixOptions

    def build_generator(self) -> nn.Module:
        try:
            levels = unet_levels(self.size)  # 8 at 256 (U-Net-256): 1x1 bottleneck
        except ValueError as error:
            raise BenchError(f"pix2pix: {error}") from None
        options = self.options
        return init_weights(UnetGenerator(1, 2, levels, options.ngf, dropout=options.dropout))

    def eval_mode(self) -> None:
        super().eval_mode()
        if self.options.test_mode == "paper":
            self.G.train()  # dropout and batch statistics at test time, as in the paper


@hookimpl
def register_methods(register):
    register(Pix2Pix)
