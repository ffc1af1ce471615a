"""fastai's DynamicUnet on a ResNet18 body: the generator of the COCO cGAN colorization write-up
(M. Shariatnia, "Colorizing black & white images with U-Net and conditional GAN"), which builds it as

    body = create_body(resnet18, pretrained=True, n_in=1, cut=-2)
    net_G = DynamicUnet(body, 2, (256, 256))

i.e. ``unet_learner(resnet18, n_out=2, self_attention=False)`` on a 1-channel input, with fastai's
defaults (``blur=False, y_range=None, last_cross=True, bottle=False, norm_type=None``). Written out
here for ResNet18, module for module as fastai 2.8 builds it (``vision/models/unet.py``, ``layers.py``):

* body: torchvision ``resnet18`` without avgpool and fc. Its first convolution takes 1 channel
  (``n_in=1``: the ImageNet RGB kernels are summed into it) and is fed the normalised L in [-1, 1]
  itself, as in the write-up (L / 50 - 1);
* middle: BatchNorm + ReLU on the body's output, then 3x3 convolutions 512 -> 1024 -> 512, each with
  bias and ReLU (fastai's ConvLayer with ``norm_type=None`` has no BatchNorm);
* four UnetBlocks at strides 16, 8, 4, 2 (skips: layer3, layer2, layer1, the stem's ReLU): a
  PixelShuffle_ICNR doubles the resolution of the lower feature and halves its channels, the skip
  goes through its own BatchNorm, ReLU on the concatenation, then two 3x3 conv + ReLU (the last
  block halves its width: 192 -> 96);
* a last PixelShuffle_ICNR to full resolution; the input L concatenated to it (``last_cross``); a
  ResBlock (conv + ReLU, conv, plus its input, ReLU) at 97 channels; a 1x1 convolution to ab. No
  output activation (``y_range=None``): ab is unbounded, as in the write-up.

Init as fastai's: kaiming normal with zero bias for the middle, UnetBlock and ResBlock convolutions,
ICNR for the shuffles, torch's default for the last 1x1 convolution with bias normal(0, 0.01),
BatchNorm scale 1 and shift 1e-3; the body keeps torchvision's weights (ImageNet, or its random init).
fastai 2.8.12 counts 31,099,672 parameters for this network.

One simplification: fastai resizes (nearest) where a skip and the up-sampled feature disagree in
size, which happens only for sizes that are not multiples of 32; those sizes are refused instead.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.methods.networks import PixelShuffleICNR

BODY_STRIDE = 32


def conv_relu(in_ch: int, out_ch: int, *, kernel: int = 3, relu: bool = True) -> nn.Sequential:
    """fastai ``ConvLayer(norm_type=None)``: convolution with bias (then ReLU), as ``apply_init``
    leaves it: kaiming normal weight, zero bias."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=(kernel - 1) // 2)
    nn.init.kaiming_normal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.ReLU()) if relu else nn.Sequential(conv)


def fastai_batch_norm(channels: int) -> nn.BatchNorm2d:
    """fastai ``BatchNorm``: scale 1, shift 1e-3."""
    norm = nn.BatchNorm2d(channels)
    nn.init.constant_(norm.bias, 1e-3)
    return norm


class UnetBlock(nn.Module):
    """fastai ``UnetBlock(up_in_ch, skip_ch, final_div)``: PixelShuffle_ICNR up-sampling of the lower
    feature, BatchNorm on the skip, ReLU on their concatenation, two conv + ReLU."""

    def __init__(self, up_in_ch: int, skip_ch: int, final_div: bool = True):
        super().__init__()
        self.shuf = PixelShuffleICNR(up_in_ch, up_in_ch // 2)
        self.bn = fastai_batch_norm(skip_ch)
        in_ch = up_in_ch // 2 + skip_ch
        self.out_ch = in_ch if final_div else in_ch // 2
        self.conv1 = conv_relu(in_ch, self.out_ch)
        self.conv2 = conv_relu(self.out_ch, self.out_ch)
        self.relu = nn.ReLU()

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.relu(torch.cat([self.shuf(up_in), self.bn(skip)], 1))
        return self.conv2(self.conv1(x))


class ResBlock(nn.Module):
    """fastai ``ResBlock(1, ch, ch, norm_type=None)``: ReLU(conv(ReLU(conv(x))) + x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.convpath = nn.Sequential(conv_relu(channels, channels), conv_relu(channels, channels, relu=False))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convpath(x) + x)


class ResNet18Body(nn.Module):
    """torchvision ``resnet18`` cut before avgpool/fc (fastai ``create_body(cut=-2)``) with an
    ``in_ch``-channel first convolution; returns the features at strides 2, 4, 8, 16 and 32.

    Module names are torchvision's, so its state dicts load key for key (see
    :meth:`ResNet18DynamicUnet.load_torchvision_resnet18`).
    """

    SKIP_CHANNELS = (64, 64, 128, 256)  # strides 2 (the stem's ReLU), 4, 8, 16
    CHANNELS = 512  # stride 32

    def __init__(self, in_ch: int = 1):
        super().__init__()
        import torchvision  # imported here: only this network needs it

        resnet = torchvision.models.resnet18()  # torchvision's init: the scratch ablation's encoder
        # fastai replaces the first convolution by a fresh one (torch's default init) taking in_ch channels
        self.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu, self.maxpool = resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.relu(self.bn1(self.conv1(x)))]
        x = self.maxpool(features[0])
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features


class ResNet18DynamicUnet(nn.Module):
    """``DynamicUnet(create_body(resnet18, n_in=in_ch, cut=-2), out_ch, size)`` (module docstring)."""

    def __init__(self, in_ch: int = 1, out_ch: int = 2):
        super().__init__()
        self.encoder = ResNet18Body(in_ch)
        deep = ResNet18Body.CHANNELS
        self.middle = nn.Sequential(fastai_batch_norm(deep), nn.ReLU(), conv_relu(deep, 2 * deep),
                                    conv_relu(2 * deep, deep))
        self.blocks = nn.ModuleList()
        skips = ResNet18Body.SKIP_CHANNELS[::-1]
        for index, skip in enumerate(skips):
            self.blocks.append(UnetBlock(deep, skip, final_div=index < len(skips) - 1))
            deep = self.blocks[-1].out_ch
        self.final_shuffle = PixelShuffleICNR(deep)
        self.res_block = ResBlock(deep + in_ch)  # after the input is concatenated (last_cross)
        self.head = nn.Conv2d(deep + in_ch, out_ch, 1)  # weight: torch's default init
        nn.init.normal_(self.head.bias, 0.0, 0.01)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        *skips, x = self.encoder(L)
        x = self.middle(x)
        for block, skip in zip(self.blocks, reversed(skips)):
            x = block(x, skip)
        x = torch.cat([self.final_shuffle(x), L], 1)
        return self.head(self.res_block(x))

    def load_torchvision_resnet18(self, state: dict) -> None:
        """Load a torchvision ``resnet18`` state dict into the body: fc dropped, and the RGB kernels
        of the first convolution summed when the body takes 1 channel (fastai ``_load_pretrained_weights``)."""
        if not isinstance(state, dict):
            raise ValueError("not a state dict")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        expected = self.encoder.state_dict()
        first = state.get("conv1.weight")
        if expected["conv1.weight"].shape[1] == 1 and isinstance(first, torch.Tensor) and first.dim() == 4 \
                and first.shape[1] == 3:
            state["conv1.weight"] = first.sum(1, keepdim=True)
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state)
                       if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape)
        if missing or unexpected or wrong:
            parts = [f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                     for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
            raise ValueError("not a torchvision resnet18 state dict (" + "; ".join(parts) + ")")
        self.encoder.load_state_dict(state)
