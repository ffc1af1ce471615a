"""CycleGAN (Zhu et al. 2017) for colorization: G maps gray to colour, F maps colour back to gray,
a PatchGAN per domain, least-squares GAN loss, cycle loss (lambda 10), image pools of 50, Adam 2e-4
with beta1 0.5; ResNet generators (9 blocks at 256, 6 below), instance norm, reflection padding.
Update order as in junyanz ``cycle_gan_model``: both generators against frozen discriminators,
then both discriminators on pooled fakes.

Two settings of the CycleGAN colorization study:

* ``cyclegan-paired``: each batch pairs a gray image with its own colour version;
* ``cyclegan-unpaired``: the colour batch is drawn independently of the gray one, so an image's
  gray and colour versions are not shown together.

Colour space (option ``color_space``):

* ``rgb`` (default, the reference's and the study's setting): both domains are 3-channel images in
  [-1, 1]: gray = the L image rendered as gray RGB (ab = 0), colour = the RGB image. G and F are
  RGB -> RGB and F's input on the gray-side cycle is G's output alone, so that cycle constrains G
  (it must keep what F needs to rebuild the gray image); D_color scores G's image on its own, with
  no channel shared with the real one, in both settings. Identity loss 0.5 * lambda as the
  reference. The harness's contract is normalised ab from L: ``colorize`` converts G's RGB output
  to Lab and returns its ab, and the output image is the input's L with those ab (G's own
  lightness is dropped).
* ``lab`` (option): gray = L (1 channel), colour = Lab (3 channels, normalised). G predicts ab from
  L and its colour image is (L, G(L)), so it keeps the input's lightness; F maps Lab to L. This is
  partly degenerate: (1) F receives the real L inside G's colour image, so copying that channel
  satisfies the gray-side cycle whatever G does (the cycle then constrains G not at all), and with
  that F the colour-side cycle is an L1 regression of the colour batch's ab from its L; (2) in the paired setting the real and fake colour images share the identical L channel,
  so D_color is pix2pix's conditional discriminator D(L, ab), unlike the unpaired setting; (3) the
  losses see ab/110: a colour error costs the L1 cycle loss about half what it costs in RGB's
  [-1, 1], which shifts the lambda = 10 balance against the GAN loss. L -> ab has unequal channel
  counts, so the identity loss is off (``lambda_identity`` is ignored).

``eval()`` at test time changes nothing here: instance norm keeps no running statistics and the
CycleGAN generators have no dropout.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from bench.api import (
    Batch,
    BenchError,
    Method,
    MethodOptions,
    hookimpl,
    normalized_lab_to_rgb,
    positive,
    rgb_to_normalized_lab,
)
from bench.methods.networks import (
    GANLoss,
    adam,
    ImagePool,
    NLayerDiscriminator,
    ResnetGenerator,
    init_weights,
    optimize,
    patchgan_min_size,
    resnet_blocks_for,
    set_requires_grad,
)


@dataclass
class CycleGANOptions(MethodOptions):
    batch_size: int = 1  # the reference's batch size
    color_space: Literal["rgb", "lab"] = "rgb"  # see the module docstring
    gan_mode: Literal["lsgan", "vanilla"] = "lsgan"
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # times lambda_cycle; rgb only (see the module docstring)
    pool_size: int = 50
    ngf: int = 64
    ndf: int = 64
    n_layers_d: int = 3
    n_blocks: int | None = None  # None: 9 at size >= 256, else 6

    def validate(self) -> None:
        super().validate()
        for name in ("ngf", "ndf", "n_layers_d"):
            positive(name, getattr(self, name))
        for name in ("lambda_cycle", "lambda_identity", "pool_size"):
            if getattr(self, name) < 0:
                raise BenchError(f"option {name} must be >= 0, got {getattr(self, name)}")
        if self.n_blocks is not None and self.n_blocks < 0:
            raise BenchError(f"option n_blocks must be >= 0, got {self.n_blocks}")


class CycleGAN(Method):
    Options = CycleGANOptions
    inference_nets = ("G",)  # gray -> colour; F and both discriminators only train

    @classmethod
    def check_size(cls, size: int, options: CycleGANOptions) -> None:
        smallest = max(patchgan_min_size(options.n_layers_d), 4)
        if size % 4 or size < smallest:
            raise BenchError(f"{cls.name}: size must be a multiple of 4 and at least {smallest}, got {size}")

    def __init__(self, options: CycleGANOptions, context):
        super().__init__(options, context)
        self.lab = options.color_space == "lab"
        gray_ch, color_ch = (1, 3) if self.lab else (3, 3)
        n_blocks = resnet_blocks_for(self.size) if options.n_blocks is None else options.n_blocks

        def generator(in_ch, out_ch):
            return init_weights(ResnetGenerator(in_ch, out_ch, options.ngf, n_blocks)).to(self.device)

        def discriminator(in_ch):
            net = NLayerDiscriminator(in_ch, options.ndf, options.n_layers_d, norm="instance")
            return init_weights(net).to(self.device)

        # G: gray -> colour (in Lab it predicts ab only), F: colour -> gray.
        self.G = generator(gray_ch, 2 if self.lab else color_ch)
        self.F = generator(color_ch, gray_ch)
        self.D_color, self.D_gray = discriminator(color_ch), discriminator(gray_ch)
        self.nets = {"G": self.G, "F": self.F, "D_color": self.D_color, "D_gray": self.D_gray}
        self.optimizers = {
            "G": adam(itertools.chain(self.G.parameters(), self.F.parameters()), options.lr),
            "D": adam(itertools.chain(self.D_color.parameters(), self.D_gray.parameters()), options.lr),
        }
        self.gan_loss = GANLoss(options.gan_mode)
        # Pools draw from their own generators (seeded from torch's, itself seeded by the harness).
        seeds = torch.randint(2**62, (2,)).tolist()
        self.pool_color = ImagePool(options.pool_size, seeds[0])
        self.pool_gray = ImagePool(options.pool_size, seeds[1])
        self.lambda_identity = 0.0 if self.lab else options.lambda_identity

    # -- domains -------------------------------------------------------------------------------
    def to_gray(self, L: torch.Tensor) -> torch.Tensor:
        """A gray domain image from normalised L."""
        return L if self.lab else self._rgb(L, torch.zeros_like(L).expand(-1, 2, -1, -1))

    def to_color(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return torch.cat([L, ab], 1) if self.lab else self._rgb(L, ab)

    @staticmethod
    def _rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return normalized_lab_to_rgb(L, ab) * 2.0 - 1.0  # the reference's [-1, 1] images

    def translate(self, gray: torch.Tensor) -> torch.Tensor:
        """G as a gray -> colour mapping. In Lab the colour image is (input L, G's ab), so F, given
        it, sees the real L; in RGB it is G's output alone."""
        return torch.cat([gray, self.G(gray)], 1) if self.lab else self.G(gray)

    def cycles(self, real_gray: torch.Tensor, real_color: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The reference's forward pass: (fake_color, rec_gray, fake_gray, rec_color)."""
        fake_color = self.translate(real_gray)
        rec_gray = self.F(fake_color)
        fake_gray = self.F(real_color)
        return fake_color, rec_gray, fake_gray, self.translate(fake_gray)

    def domains(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(gray, colour) batches; paired: the same images; unpaired: independent draws."""
        if self.unpaired:
            if batch.color_L is None or batch.color_ab is None:
                raise BenchError(f"{self.name} needs an independently drawn colour batch (Batch.color_L/color_ab)")
            return self.to_gray(batch.L), self.to_color(batch.color_L, batch.color_ab)
        return self.to_gray(batch.L), self.to_color(batch.L, batch.ab)

    # -- training ------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        options = self.options
        real_gray, real_color = self.domains(batch)
        fake_color, rec_gray, fake_gray, rec_color = self.cycles(real_gray, real_color)

        set_requires_grad([self.D_color, self.D_gray], False)
        losses = {
            "G_GAN": self.gan_loss(self.D_color(fake_color), True),
            "F_GAN": self.gan_loss(self.D_gray(fake_gray), True),
            "cycle_gray": F.l1_loss(rec_gray, real_gray) * options.lambda_cycle,
            "cycle_color": F.l1_loss(rec_color, real_color) * options.lambda_cycle,
        }
        if self.lambda_identity > 0:
            weight = options.lambda_cycle * self.lambda_identity
            losses["idt_G"] = F.l1_loss(self.G(real_color), real_color) * weight
            losses["idt_F"] = F.l1_loss(self.F(real_gray), real_gray) * weight
        optimize(self.optimizers["G"], sum(losses.values()))

        set_requires_grad([self.D_color, self.D_gray], True)
        losses["D_color"] = self._discriminator_loss(self.D_color, real_color, self.pool_color.query(fake_color))
        losses["D_gray"] = self._discriminator_loss(self.D_gray, real_gray, self.pool_gray.query(fake_gray))
        optimize(self.optimizers["D"], losses["D_color"] + losses["D_gray"])
        return {name: loss.detach() for name, loss in losses.items()}

    def _discriminator_loss(self, D, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.gan_loss(D(real), True) + self.gan_loss(D(fake.detach()), False))

    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        if self.lab:
            return self.G(L)
        # ab of G's RGB image; the harness pairs them with the input's L, not G's lightness
        rgb = (self.G(self.to_gray(L)) + 1.0) / 2.0
        return rgb_to_normalized_lab(rgb.clamp(0.0, 1.0))[1]

    # -- checkpoint extras ---------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"pool_color": self.pool_color.state_dict(), "pool_gray": self.pool_gray.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.pool_color.load_state_dict(state["pool_color"], self.device)
        self.pool_gray.load_state_dict(state["pool_gray"], self.device)


class CycleGANPaired(CycleGAN):
    name = "cyclegan-paired"
    description = "CycleGAN (Zhu et al. 2017), each gray image batched with its own colour version"


class CycleGANUnpaired(CycleGAN):
    name = "cyclegan-unpaired"
    description = "CycleGAN (Zhu et al. 2017), gray and colour batches drawn independently"
    unpaired = True


@hookimpl
def register_methods(register):
    register(CycleGANPaired)
    register(CycleGANUnpaired)
