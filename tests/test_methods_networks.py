"""The shared networks against the reference architectures: shapes at 256x256 and parameter counts.

Expected counts are computed layer by layer from the papers' architectures (pix2pix appendix 6.1.1,
CycleGAN appendix 7.2, junyanz ``networks.py`` for bias/norm placement) and cross-checked with the
totals the reference code prints in its training logs ("Total number of parameters: 54.414 M"
for unet_256, 2.769 M for the pix2pix PatchGAN, 11.378 M for resnet_9blocks, 2.765 M for the
CycleGAN PatchGAN).
"""

import pytest
import torch
from torch import nn

from bench.methods.networks import (
    GANLoss,
    ImagePool,
    NLayerDiscriminator,
    ResNet18UNet,
    ResnetGenerator,
    UnetGenerator,
    patchgan_min_size,
    resnet_blocks_for,
    unet_levels,
)


def conv(i, o, k, bias):
    """Parameters of a (transposed) k x k convolution."""
    return i * o * k * k + (o if bias else 0)


def unet_params(in_ch, out_ch, levels, ngf=64):
    """Encoder C64-C128-C256-C512-...-C512 (no norm on the first), mirrored decoder on concatenated
    skips, BatchNorm (2 params per channel) everywhere but the outermost layers, no conv bias
    before BatchNorm."""
    total = conv(in_ch, ngf, 4, False) + conv(2 * ngf, out_ch, 4, True)  # outermost down, up
    middle = [(ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)] + [(8 * ngf, 8 * ngf)] * (levels - 5)
    for outer, inner in middle:
        total += conv(outer, inner, 4, False) + 2 * inner + conv(2 * inner, outer, 4, False) + 2 * outer
    return total + 2 * conv(8 * ngf, 8 * ngf, 4, False) + 2 * 8 * ngf  # innermost: no skip into its up


def patchgan_params(in_ch, ndf=64, norm="batch"):
    """C64-C128-C256-C512 then a 1-channel conv; BatchNorm: no conv bias; InstanceNorm: bias, no affine."""
    batch = norm == "batch"
    total = conv(in_ch, ndf, 4, True) + conv(8 * ndf, 1, 4, True)
    for i, o in ((ndf, 2 * ndf), (2 * ndf, 4 * ndf), (4 * ndf, 8 * ndf)):
        total += conv(i, o, 4, not batch) + (2 * o if batch else 0)
    return total


def resnet_params(in_ch, out_ch, n_blocks, ngf=64):
    """c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-out; instance norm without affine, so every
    conv has a bias."""
    total = conv(in_ch, ngf, 7, True) + conv(ngf, 2 * ngf, 3, True) + conv(2 * ngf, 4 * ngf, 3, True)
    total += n_blocks * 2 * conv(4 * ngf, 4 * ngf, 3, True)
    total += conv(4 * ngf, 2 * ngf, 3, True) + conv(2 * ngf, ngf, 3, True) + conv(ngf, out_ch, 7, True)
    return total


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_unet_256_matches_pix2pix():
    assert unet_levels(256) == 8 and unet_levels(64) == 6
    with torch.device("meta"):  # shapes and counts without computing anything
        reference = UnetGenerator(3, 3, levels=8)
        colorizer = UnetGenerator(1, 2, levels=8)
        out = colorizer(torch.empty(2, 1, 256, 256))
    assert count(reference) == unet_params(3, 3, 8) and round(count(reference) / 1e6, 3) == 54.414
    assert count(colorizer) == unet_params(1, 2, 8)  # ~54.4 M for L -> ab
    assert out.shape == (2, 2, 256, 256)
    assert count(UnetGenerator(1, 2, levels=6)) == unet_params(1, 2, 6)
    with pytest.raises(ValueError, match="power-of-two"):
        unet_levels(48)


def test_unet_layers_follow_the_paper():
    net = UnetGenerator(1, 2, levels=8)
    modules = list(net.modules())
    downs = [m for m in modules if type(m) is nn.Conv2d]
    ups = [m for m in modules if type(m) is nn.ConvTranspose2d]
    assert len(downs) == len(ups) == 8
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) for m in downs + ups)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in modules) == 2 * 8 - 3  # none on outer/innermost-down
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in modules) == 7
    assert sum(type(m) is nn.ReLU for m in modules) == 8  # before every up-convolution
    assert [type(m) for m in net.model.model][-1] is nn.Tanh
    # Dropout 0.5 right after the three up-convolutions nearest the bottleneck (CD512 x 3).
    decoder = [m for m in modules if isinstance(m, (nn.ConvTranspose2d, nn.Dropout))]
    order = [type(m).__name__ for m in decoder]
    # modules() reaches the up-convolutions from the innermost block outwards
    assert order[:6] == ["ConvTranspose2d", "Dropout"] * 3 and "Dropout" not in order[6:]
    assert all(m.p == 0.5 for m in modules if isinstance(m, nn.Dropout))
    assert not any(isinstance(m, nn.Dropout) for m in UnetGenerator(1, 2, 8, dropout=False).modules())


def test_patchgan_70x70():
    with torch.device("meta"):
        pix2pix_d = NLayerDiscriminator(1 + 2)
        out = pix2pix_d(torch.empty(2, 3, 256, 256))
    assert out.shape == (2, 1, 30, 30)
    assert count(pix2pix_d) == patchgan_params(3)  # ~2.77 M
    assert round(count(NLayerDiscriminator(6)) / 1e6, 3) == 2.769  # the reference's 3+3 channels
    assert count(NLayerDiscriminator(3, norm="instance")) == patchgan_params(3, norm="instance")
    assert round(count(NLayerDiscriminator(3, norm="instance")) / 1e6, 3) == 2.765
    # Receptive field of one output logit: 70 x 70 pixels.
    rf, jump = 1, 1
    for m in pix2pix_d.modules():
        if isinstance(m, nn.Conv2d):
            rf += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    assert rf == 70
    assert patchgan_min_size(3) == 24
    with torch.device("meta"):
        assert NLayerDiscriminator(3)(torch.empty(1, 3, 24, 24)).shape[-1] == 1


def test_resnet_generator_matches_cyclegan():
    assert resnet_blocks_for(256) == 9 and resnet_blocks_for(128) == 6 and resnet_blocks_for(64) == 6
    with torch.device("meta"):
        reference = ResnetGenerator(3, 3, n_blocks=9)
        colorizer = ResnetGenerator(1, 2, n_blocks=9)
        out = colorizer(torch.empty(1, 1, 256, 256))
    assert count(reference) == resnet_params(3, 3, 9) and round(count(reference) / 1e6, 3) == 11.378
    assert count(colorizer) == resnet_params(1, 2, 9)
    assert out.shape == (1, 2, 256, 256)
    modules = list(reference.modules())
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in modules) == 2 + 2 * 9
    assert all(not m.affine for m in modules if isinstance(m, nn.InstanceNorm2d))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in modules)


def test_resnet18_unet_encoder_is_torchvision_resnet18():
    import torchvision

    net = ResNet18UNet()
    expected = {k for k in torchvision.models.resnet18().state_dict() if not k.startswith("fc.")}
    assert set(net.encoder.state_dict()) == expected
    assert net(torch.zeros(2, 1, 64, 64)).shape == (2, 2, 64, 64)
    state = torchvision.models.resnet18().state_dict()
    with pytest.raises(ValueError, match="missing: conv1.weight"):
        net.load_torchvision_resnet18({k: v for k, v in state.items() if k != "conv1.weight"})
    with pytest.raises(ValueError, match="unexpected: extra.weight"):
        net.load_torchvision_resnet18(state | {"extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="wrong shape: layer4.0.conv1.weight"):
        net.load_torchvision_resnet18(state | {"layer4.0.conv1.weight": torch.zeros(512, 256, 1, 1)})


def test_gan_loss_targets():
    logits = torch.zeros(1, 1, 2, 2)
    vanilla, smoothed, lsgan = GANLoss("vanilla"), GANLoss("vanilla", real_label=0.9), GANLoss("lsgan")
    log2 = torch.log(torch.tensor(2.0))
    assert torch.isclose(vanilla(logits, True), log2) and torch.isclose(vanilla(logits, False), log2)
    # One-sided: only the discriminator's real target is smoothed.
    assert torch.isclose(lsgan(torch.full((1, 1, 2, 2), 0.9), True), torch.tensor(0.01))
    strong = torch.full((1, 1, 2, 2), 5.0)
    assert smoothed(strong, True, discriminator=True) > vanilla(strong, True, discriminator=True)
    assert torch.equal(smoothed(strong, True), vanilla(strong, True))
    assert torch.equal(smoothed(strong, False, discriminator=True), vanilla(strong, False, discriminator=True))


def test_image_pool_mixes_history_and_restores():
    pool = ImagePool(size=3, seed=1)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling up: returned as is
    outs = [pool.query(torch.full((4, 1, 1, 1), 10.0 + k)) for k in range(5)]
    returned = torch.cat(outs).flatten().tolist()
    assert any(v < 10 for v in returned) and any(v >= 10 for v in returned)  # old and new mixed
    state = pool.state_dict()
    clone = ImagePool(size=3, seed=99)
    clone.load_state_dict(state)
    batch = torch.full((6, 1, 1, 1), 50.0)
    assert torch.equal(pool.query(batch), clone.query(batch))
    assert ImagePool(size=0).query(batch) is batch
