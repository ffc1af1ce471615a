"""Pix2Pix on an ImageNet ResNet18 encoder: the variant of the COCO colorization project
("Colorizing black & white images with U-Net and conditional GAN", M. Shariatnia).

The generator is a U-Net whose encoder is timm's ``resnet18`` (``features_only``) and whose decoder
upsamples with skips to full resolution (``networks.ResNet18UNet``; the gray L enters the
pretrained 3-channel stem repeated to 3 channels with ImageNet normalisation). Training has two
stages, as in the project:

1. the first ``stage1_fraction`` of the budget (default 30 %) trains the generator alone with L1
   (Adam, lr ``pretrain_lr`` = 1e-4, default betas, as the project's pretraining);
2. the rest trains generator and 70x70 PatchGAN with the pix2pix objective (cGAN + 100 * L1,
   Adam 2e-4, betas (0.5, 0.999)), shared with ``pix2pix`` through ``ConditionalGAN``.

Each stage is a full run of its own: its learning rate is constant, then decays linearly to zero
over the stage's share of the budget (``decay_start`` of the stage). The decoder starts from
normal(0, 0.02) like the other pix2pix networks. At test time the networks are in ``eval()``
(BatchNorm running statistics; this generator has no dropout).

``pix2pix-resnet18`` needs torchvision's ImageNet weights (``resnet18-f37072fd.pth``); without them
it is skipped, never trained from scratch under its name. ``pix2pix-resnet18-scratch`` is the same
network from random init (timm's default init for the encoder): the ablation that shows what
pretraining buys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import Batch, BenchError, hookimpl, linear_decay
from bench.methods.networks import ResNet18UNet, adam, init_weights, optimize
from bench.methods.pix2pix import ConditionalGAN, ConditionalGANOptions
from bench.options import fraction, positive

WEIGHTS_KEY = "resnet18-imagenet"


@dataclass
class ResNet18Options(ConditionalGANOptions):
    # The COCO project used 16; 4 (as pix2pix) makes a 64 px CPU step about 4x cheaper and makes
    # pix2pix vs. this variant differ only in the generator and its training (batch_size=16 restores it).
    batch_size: int = 4
    stage1_fraction: float = 0.3  # share of the budget for the L1-only generator stage
    pretrain_lr: float = 1e-4

    def validate(self) -> None:
        super().validate()
        fraction("stage1_fraction", self.stage1_fraction)
        if self.stage1_fraction >= 1:
            raise BenchError("option stage1_fraction must be < 1: the second stage is the adversarial one")
        positive("pretrain_lr", self.pretrain_lr)


class Pix2PixResNet18(ConditionalGAN):
    name = "pix2pix-resnet18"
    description = "Pix2Pix with an ImageNet-pretrained ResNet18 U-Net encoder; L1 stage, then cGAN + L1"
    Options = ResNet18Options
    pretrained = True

    def __init__(self, options: ResNet18Options, context):
        if context.size % 32:
            raise BenchError(f"{self.name}: size {context.size} must be a multiple of 32 (ResNet18's stride)")
        super().__init__(options, context)
        # The L1-only stage has its own optimiser, as the project's separate pretraining run.
        self.optimizers["G_L1"] = adam(self.G.parameters(), options.pretrain_lr, betas=(0.9, 0.999))
        self.encoder_ready = not self.pretrained
        if self.pretrained and context.weights is not None:  # None: a checkpoint will provide them
            self.load_pretrained(context.weights)

    def build_generator(self) -> nn.Module:
        net = ResNet18UNet(out_ch=2)
        for module in net.decoder_modules():
            init_weights(module)
        return net

    def load_pretrained(self, weights) -> None:
        state = weights.load(WEIGHTS_KEY)  # Unavailable (-> skipped) when the file is missing
        try:
            self.G.load_torchvision_resnet18(state)
        except ValueError as error:
            raise BenchError(f"{weights.path(WEIGHTS_KEY)}: {error}") from None
        self.encoder_ready = True

    def load_state_dict(self, state, *, restore_training: bool = True) -> None:
        super().load_state_dict(state, restore_training=restore_training)
        self.encoder_ready = True

    def _check_ready(self) -> None:
        if not self.encoder_ready:
            raise BenchError(f"{self.name} was built without its ImageNet weights (no weight store given); "
                             "build it with one, or load a checkpoint")

    def in_l1_stage(self) -> bool:
        return self.progress < self.options.stage1_fraction

    def lr_factor(self, progress: float) -> float:
        """Constant-then-linear-decay within each stage's share of the budget."""
        split = self.options.stage1_fraction
        local = progress / split if progress < split else (progress - split) / (1.0 - split)
        return linear_decay(local, self.options.decay_start)

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self._check_ready()
        if not self.in_l1_stage():
            return self.adversarial_step(batch)
        loss = F.l1_loss(self.G(batch.L), batch.ab)
        optimize(self.optimizers["G_L1"], loss)
        return {"G_L1": loss.detach()}

    def colorize(self, L: torch.Tensor) -> torch.Tensor:
        self._check_ready()
        return super().colorize(L)


class Pix2PixResNet18Scratch(Pix2PixResNet18):
    name = "pix2pix-resnet18-scratch"
    description = "pix2pix-resnet18 from random init (ablation: what ImageNet pretraining buys)"
    pretrained = False


@hookimpl
def register_methods(register):
    register(Pix2PixResNet18)
    register(Pix2PixResNet18Scratch)
