"""Network blocks shared by the built-in methods (after junyanz/pytorch-CycleGAN-and-pix2pix).

Each method module says only how it differs; every generator, discriminator, loss and pool lives
here once.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn


def get_norm(kind: str):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """normal(0, 0.02) for conv/linear weights, normal(1, 0.02) for norm scales (pix2pix/CycleGAN)."""

    def init(m: nn.Module) -> None:
        name = type(m).__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    return net.apply(init)


def conv_norm_act(in_ch: int, out_ch: int, *, kernel: int = 3, stride: int = 1, dilation: int = 1,
                  norm: str = "batch", act: nn.Module | None = None) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, bias=norm != "batch"),
        get_norm(norm)(out_ch),
        act if act is not None else nn.ReLU(True),
    )


class EncoderDecoder(nn.Module):
    """Plain fully convolutional encoder-decoder (no skips): the regression baseline's network.

    ``depth`` stride-2 stages down, dilated convolutions at the bottleneck for context, and as many
    transposed-convolution stages back up to full resolution; tanh output.
    """

    def __init__(self, in_ch: int = 1, out_ch: int = 2, width: int = 64, depth: int = 3):
        super().__init__()
        layers, ch = [conv_norm_act(in_ch, width)], width
        for _ in range(depth):
            layers.append(conv_norm_act(ch, min(ch * 2, width * 8), stride=2))
            ch = min(ch * 2, width * 8)
        layers += [conv_norm_act(ch, ch, dilation=2), conv_norm_act(ch, ch, dilation=2)]
        for _ in range(depth):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.Conv2d(ch, out_ch, 3, 1, 1), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def unet_levels(size: int) -> int:
    """Down-sampling levels so the bottleneck is 1x1: 8 at 256 (U-Net-256), 6 at 64."""
    levels = int(math.log2(size))
    if 2**levels != size or levels < 5:
        raise ValueError(f"the U-Net needs a power-of-two size >= 32, got {size}")
    return levels
