"""Pix2Pix on an ImageNet ResNet18 U-Net, after the COCO cGAN colorization write-up ("Colorizing
black & white images with U-Net and conditional GAN", M. Shariatnia).

The generator is fastai's DynamicUnet on a ResNet18 body (``dynamic_unet.ResNet18DynamicUnet``:
PixelShuffle up-sampling with ICNR init, the BatchNorm/ReLU/two-conv middle block, the input
concatenated before a last ResBlock, no output activation; L enters a 1-channel first convolution
holding the summed ImageNet RGB kernels). Training follows the write-up's two runs, as shares of
the budget:

1. the first ``stage1_fraction`` (default 50 %: its 20 L1 epochs, then 20 GAN epochs) trains the
   generator alone with L1, with its own Adam (``pretrain_lr`` 1e-4, beta1 ``pretrain_beta1``);
2. the rest trains generator and 70x70 PatchGAN with the pix2pix objective (cGAN + 100 * L1, D on
   normal(0, 0.02) init), shared with ``pix2pix`` through ``ConditionalGAN``; Adam ``lr`` 1e-4.

Batch 16, Adam betas (0.5, 0.999) in both stages, and a constant learning rate (the write-up has no
schedule; ``decay_start`` < 1 runs the suite's constant-then-linear decay within each stage). At
test time the networks are in ``eval()`` (BatchNorm running statistics), as the write-up's
``visualize`` runs ``net_G.eval()``; this generator has no dropout.

``pix2pix-resnet18`` needs torchvision's ImageNet weights (``resnet18-f37072fd.pth``, those fastai's
``create_body(resnet18, pretrained=True)`` loads); without them it is skipped, never trained from
random init under its name. ``pix2pix-resnet18-scratch`` is the same method with the body from
torchvision's random init: the ablation that shows what pretraining buys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import Batch, BenchError, fraction, hookimpl, linear_decay, positive
from bench.methods.dynamic_unet import BODY_STRIDE, ResNet18DynamicUnet
from bench.methods.networks import adam, optimize
from bench.methods.pix2pix import ConditionalGAN, ConditionalGANOptions

WEIGHTS_KEY = "resnet18-imagenet"


@dataclass
class ResNet18Options(ConditionalGANOptions):
    batch_size: int = 16
    lr: float = 1e-4  # the adversarial stage, G and D
    decay_start: float = 1.0  # 1 = constant, as the write-up
    stage1_fraction: float = 0.5  # share of the budget for the L1-only generator stage
    pretrain_lr: float = 1e-4
    pretrain_beta1: float = 0.5

    def validate(self) -> None:
        super().validate()
        fraction("stage1_fraction", self.stage1_fraction)
        if self.stage1_fraction >= 1:
            raise BenchError("option stage1_fraction must be < 1: the second stage is the adversarial one")
        positive("pretrain_lr", self.pretrain_lr)
        if not 0 <= self.pretrain_beta1 < 1:
            raise BenchError(f"option pretrain_beta1 must be in [0, 1), got {self.pretrain_beta1}")


class Pix2PixResNet18(ConditionalGAN):
    name = "pix2pix-resnet18"
    description = "Pix2Pix with fastai's DynamicUnet on an ImageNet ResNet18 (COCO write-up); L1 stage, then cGAN + L1"
    Options = ResNet18Options
    pretrained = True

    @classmethod
    def check_size(cls, size: int, options: ResNet18Options) -> None:
        super().check_size(size, options)
        if size % BODY_STRIDE:
            raise BenchError(f"{cls.name}: size {size} must be a multiple of {BODY_STRIDE} (ResNet18's stride)")

    def __init__(self, options: ResNet18Options, context):
        super().__init__(options, context)
        # The L1-only stage has its own optimiser, as the write-up's separate pretraining run.
        self.optimizers["G_L1"] = adam(self.G.parameters(), options.pretrain_lr, betas=(options.pretrain_beta1, 0.999))
        self.encoder_ready = not self.pretrained
        if self.pretrained and context.weights is not None:  # None: a checkpoint will provide them
            self.load_pretrained(context.weights)

    def build_generator(self) -> nn.Module:
        return ResNet18DynamicUnet(in_ch=1, out_ch=2)

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
        """Each stage runs the schedule over its own share of the budget (constant by default)."""
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
    description = "pix2pix-resnet18 with the ResNet18 body from random init (ablation: what ImageNet pretraining buys)"
    pretrained = False


@hookimpl
def register_methods(register):
    register(Pix2PixResNet18)
    register(Pix2PixResNet18Scratch)
