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


def upconv_norm_act(in_ch: int, out_ch: int) -> nn.Sequential:
    """x2 up-sampling: 4x4 stride-2 transposed convolution, BatchNorm, ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True))


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
            layers.append(upconv_norm_act(ch, ch // 2))
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


# Adam betas of pix2pix and CycleGAN (beta1 0.5 steadies GAN training).
GAN_ADAM_BETAS = (0.5, 0.999)


def adam(params, lr: float, betas: tuple[float, float] = GAN_ADAM_BETAS) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one (about 10x faster on the CPU for the ~30 M
    parameters of the U-Net; the same algorithm, rounding aside)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):  # older torch, or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr, betas=betas)


def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One update: clear the gradients, backpropagate ``loss``, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def set_requires_grad(nets, flag: bool) -> None:
    """Freeze/unfreeze networks (the discriminator during the generator's update saves its grads)."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


# -- pix2pix U-Net (Isola et al. 2017; junyanz UnetSkipConnectionBlock) ----------------------------


class UnetSkipConnectionBlock(nn.Module):
    """down -> submodule -> up, with the block's input concatenated to its output (the skip).

    4x4 stride-2 (transposed) convolutions, LeakyReLU 0.2 going down, ReLU going up, norm on every
    layer except the outermost down/up and the innermost down; tanh after the outermost up.
    """

    def __init__(self, outer_ch: int, inner_ch: int, in_ch: int | None = None, submodule: nn.Module | None = None,
                 *, outermost: bool = False, innermost: bool = False, norm: str = "batch", dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        norm_layer = get_norm(norm)
        bias = norm != "batch"  # BatchNorm has its own shift
        in_ch = outer_ch if in_ch is None else in_ch
        down_conv = nn.Conv2d(in_ch, inner_ch, 4, 2, 1, bias=bias)
        down_act, up_act = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            down = [down_conv]
            up = [up_act, nn.ConvTranspose2d(inner_ch * 2, outer_ch, 4, 2, 1), nn.Tanh()]
        elif innermost:
            down = [down_act, down_conv]
            up = [up_act, nn.ConvTranspose2d(inner_ch, outer_ch, 4, 2, 1, bias=bias), norm_layer(outer_ch)]
        else:
            down = [down_act, down_conv, norm_layer(inner_ch)]
            up = [up_act, nn.ConvTranspose2d(inner_ch * 2, outer_ch, 4, 2, 1, bias=bias), norm_layer(outer_ch)]
        if dropout:
            up.append(nn.Dropout(0.5))
        middle = [submodule] if submodule is not None else []
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The pix2pix U-Net: ``levels`` stride-2 levels down to a 1x1 bottleneck and back up.

    Channels ngf, 2ngf, 4ngf, then 8ngf for every deeper level (U-Net-256 = 8 levels). Dropout 0.5
    sits in the ``dropout_blocks`` decoder blocks nearest the bottleneck: the paper's decoder
    CD512-CD512-CD512-C512-... (the junyanz code puts them one block further out, leaving the
    innermost block without dropout; parameter counts are identical).
    """

    def __init__(self, in_ch: int = 1, out_ch: int = 2, levels: int = 8, ngf: int = 64, norm: str = "batch",
                 dropout: bool = True, dropout_blocks: int = 3):
        super().__init__()
        if levels < 5:
            raise ValueError(f"the U-Net needs at least 5 levels, got {levels}")
        # (outer, inner) channels from the innermost block outwards
        widths = [(ngf * 8, ngf * 8)] * (levels - 4) + [(ngf * 4, ngf * 8), (ngf * 2, ngf * 4), (ngf, ngf * 2)]
        block = None
        for index, (outer, inner) in enumerate(widths):
            block = UnetSkipConnectionBlock(outer, inner, submodule=block, innermost=index == 0, norm=norm,
                                            dropout=dropout and index < dropout_blocks)
        self.model = UnetSkipConnectionBlock(out_ch, ngf, in_ch, block, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# -- PatchGAN discriminator ----------------------------------------------------------------------


class NLayerDiscriminator(nn.Module):
    """PatchGAN: n_layers=3 classifies 70x70 patches (30x30 logits for a 256x256 input)."""

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        norm_layer = get_norm(norm)
        bias = norm != "batch"
        layers = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last feature layer keeps the resolution
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias), norm_layer(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))  # one logit per patch
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def patchgan_min_size(n_layers: int) -> int:
    """Smallest input for which the PatchGAN still outputs at least one logit."""
    # n_layers halvings, then two stride-1 4x4 convolutions that each take one pixel off
    return 3 * 2**n_layers


# -- CycleGAN ResNet generator (Zhu et al. 2017) -------------------------------------------------


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False):
        super().__init__()
        norm_layer, bias = get_norm(norm), norm != "batch"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, two stride-2 downs, ``n_blocks`` residual blocks, two stride-2 ups, c7s1-out, tanh."""

    def __init__(self, in_ch: int, out_ch: int, ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
                 dropout: bool = False):
        super().__init__()
        norm_layer, bias = get_norm(norm), norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), norm_layer(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias), norm_layer(ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm_layer(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def resnet_blocks_for(size: int) -> int:
    """The reference's choice: 9 residual blocks for 256x256 training images, 6 for 128x128 and below."""
    return 9 if size >= 256 else 6


# -- U-Net on a ResNet18 encoder (the COCO colorization project's generator) ----------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UpBlock(nn.Module):
    """x2 transposed-conv upsampling, then the skip features concatenated and fused by a 3x3 conv."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.up = upconv_norm_act(in_ch, out_ch)
        self.fuse = conv_norm_act(out_ch + skip_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], 1))


class ResNet18UNet(nn.Module):
    """timm ``resnet18`` (features_only: strides 2..32) as the encoder, a skip-connected decoder to
    full resolution, tanh output.

    The encoder keeps its ImageNet 3-channel stem: normalised L in [-1, 1] is mapped back to
    [0, 1], repeated to 3 channels and normalised with the ImageNet mean/std, i.e. the gray image
    an ImageNet network expects. The last decoder block fuses the input L itself as its skip.
    """

    def __init__(self, out_ch: int = 2):
        super().__init__()
        import timm  # imported here: only this network needs it, and it is slow to import

        self.encoder = timm.create_model("resnet18", pretrained=False, features_only=True)
        channels = self.encoder.feature_info.channels()  # [64, 64, 128, 256, 512]
        widths = [256, 128, 64, 64]
        self.ups = nn.ModuleList()
        deep = channels[-1]
        for skip, width in zip(reversed(channels[:-1]), widths):
            self.ups.append(UpBlock(deep, skip, width))
            deep = width
        self.final_up = UpBlock(deep, 1, 32)
        self.head = nn.Sequential(nn.Conv2d(32, out_ch, 1), nn.Tanh())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def decoder_modules(self) -> list[nn.Module]:
        return [*self.ups, self.final_up, self.head]

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        x = ((L + 1.0) / 2.0).expand(-1, 3, -1, -1)
        features = self.encoder((x - self.mean) / self.std)
        y = features[-1]
        for block, skip in zip(self.ups, reversed(features[:-1])):
            y = block(y, skip)
        return self.head(self.final_up(y, L))

    def load_torchvision_resnet18(self, state: dict) -> None:
        """Load a torchvision ``resnet18`` state dict into the encoder (same key names; fc dropped)."""
        if not isinstance(state, dict):
            raise ValueError("not a state dict")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        expected = self.encoder.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state)
                       if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape)
        if missing or unexpected or wrong:
            parts = [f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                     for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
            raise ValueError("not a torchvision resnet18 state dict (" + "; ".join(parts) + ")")
        self.encoder.load_state_dict(state)


# -- losses and image pool -----------------------------------------------------------------------


class GANLoss(nn.Module):
    """The adversarial loss on discriminator logits: ``vanilla`` (BCE with logits) or ``lsgan`` (MSE).

    ``real_label`` < 1 is one-sided label smoothing: it is the target for real images only when
    training the discriminator (``discriminator=True``); the generator always aims at 1, fakes at 0.
    """

    def __init__(self, mode: str = "vanilla", real_label: float = 1.0):
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown GAN loss {mode!r}")
        self.loss = nn.BCEWithLogitsLoss() if mode == "vanilla" else nn.MSELoss()
        self.real_label = real_label

    def forward(self, prediction: torch.Tensor, real: bool, *, discriminator: bool = False) -> torch.Tensor:
        target = (self.real_label if discriminator else 1.0) if real else 0.0
        return self.loss(prediction, torch.full_like(prediction, target))


class ImagePool:
    """History of generated images (Shrivastava et al. 2017, as in CycleGAN): the discriminator sees
    a mix of current fakes and older ones.

    Until full, every fake is stored and returned; after that each fake is, with probability 1/2,
    swapped with a random stored one (the stored one is returned). Randomness comes from the pool's
    own generator so checkpoints restore it exactly.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        stored = torch.cat(self.images) if self.images else torch.empty(0)
        return {"images": stored.cpu(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, device=None) -> None:
        stored = state["images"]
        self.images = [image.unsqueeze(0).to(device) for image in stored] if stored.numel() else []
        self.generator.set_state(state["generator"])
