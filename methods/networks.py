"""Network blocks shared by the built-in methods (after junyanz/pytorch-CycleGAN-and-pix2pix).

Each method module says only how it differs; every generator, discriminator, loss and pool lives
here once (the fastai-style ResNet18 U-Net, built from these blocks, in ``dynamic_unet.py``).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Collection

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


@contextlib.contextmanager
def batch_statistics_only(net: nn.Module):
    """Inside this block, BatchNorm layers in training mode normalise with the batch's statistics
    without also updating their running statistics: test-time batch statistics (pix2pix's
    ``test_mode=paper``) leave the trained state as it was."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False  # BatchNorm then passes no running buffers to F.batch_norm
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


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


# Which decoder blocks get dropout 0.5, counted from the bottleneck (0 = the innermost block, whose
# up-convolution takes the 1x1 bottleneck to 2x2):
# * "paper": the first three decoder layers, CD512-CD512-CD512 of U-Net-256 (Isola et al. 2017,
#   appendix 6.1.1): blocks 0, 1, 2, taking 1x1, 2x2 and 4x4 inputs, at every size (the bottleneck
#   is always 1x1, so the rule reads the same at 64 and 32 px);
# * "junyanz": the reference code's placement, the ngf*8 blocks between the innermost and the
#   ngf*4 one: blocks 1 .. levels-5 (1, 2, 3 at 256 px, block 1 only at 64 px, none at 32 px).
DROPOUT_PLACEMENTS = ("paper", "junyanz")


def unet_dropout_blocks(levels: int, placement: str = "paper") -> tuple[int, ...]:
    if placement == "paper":
        return (0, 1, 2)
    if placement == "junyanz":
        return tuple(range(1, levels - 4))
    raise ValueError(f"unknown dropout placement {placement!r}; choose one of {', '.join(DROPOUT_PLACEMENTS)}")


class UnetGenerator(nn.Module):
    """The pix2pix U-Net: ``levels`` stride-2 levels down to a 1x1 bottleneck and back up.

    Channels ngf, 2ngf, 4ngf, then 8ngf for every deeper level (U-Net-256 = 8 levels). Dropout 0.5
    follows the up-convolution of each decoder block listed in ``dropout_blocks`` (counted from the
    bottleneck, see :func:`unet_dropout_blocks`); the placement does not change parameter counts.
    """

    def __init__(self, in_ch: int = 1, out_ch: int = 2, levels: int = 8, ngf: int = 64, norm: str = "batch",
                 dropout_blocks: Collection[int] = (0, 1, 2)):
        super().__init__()
        if levels < 5:
            raise ValueError(f"the U-Net needs at least 5 levels, got {levels}")
        # (outer, inner) channels from the innermost block outwards
        widths = [(ngf * 8, ngf * 8)] * (levels - 4) + [(ngf * 4, ngf * 8), (ngf * 2, ngf * 4), (ngf, ngf * 2)]
        block = None
        for index, (outer, inner) in enumerate(widths):
            block = UnetSkipConnectionBlock(outer, inner, submodule=block, innermost=index == 0, norm=norm,
                                            dropout=index in dropout_blocks)
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


# -- sub-pixel up-sampling with ICNR init (Shi et al. 2016; Aitken et al. 2017; fastai) ----------


def icnr_(weight: torch.Tensor, scale: int = 2, init=nn.init.kaiming_normal_) -> torch.Tensor:
    """ICNR init, in place, of a convolution weight that feeds ``nn.PixelShuffle(scale)``.

    PixelShuffle builds output channel c from input channels c*scale**2 ... c*scale**2 + scale**2 - 1
    (one per sub-pixel); ICNR gives those scale**2 kernels one value, drawn by ``init`` (fastai's
    ``icnr_init``: kaiming normal), so at init the up-sampling is a convolution followed by
    nearest-neighbour resizing: no checkerboard (Aitken et al. 2017).
    """
    out_ch, in_ch, *kernel = weight.shape
    if out_ch % scale**2:
        raise ValueError(f"ICNR needs output channels divisible by {scale**2}, got {out_ch}")
    sub_kernel = init(weight.new_zeros(out_ch // scale**2, in_ch, *kernel))
    with torch.no_grad():
        weight.copy_(sub_kernel.repeat_interleave(scale**2, dim=0))
    return weight


class PixelShuffleICNR(nn.Sequential):
    """fastai ``PixelShuffle_ICNR(in_ch, out_ch, blur=False, norm_type=None)``: 1x1 convolution to
    out_ch * scale**2 channels (ICNR weight, zero bias), ReLU, ``nn.PixelShuffle(scale)``."""

    def __init__(self, in_ch: int, out_ch: int | None = None, scale: int = 2):
        out_ch = in_ch if out_ch is None else out_ch
        conv = nn.Conv2d(in_ch, out_ch * scale**2, 1)
        icnr_(conv.weight, scale)
        nn.init.zeros_(conv.bias)
        super().__init__(conv, nn.ReLU(), nn.PixelShuffle(scale))


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
