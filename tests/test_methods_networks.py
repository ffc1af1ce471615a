"""The shared networks against the reference architectures: shapes at 256x256 and parameter counts.

Expected counts are computed layer by layer from the papers' architectures (pix2pix appendix 6.1.1,
CycleGAN appendix 7.2, junyanz ``networks.py`` for bias/norm placement, fastai's ``DynamicUnet``)
and cross-checked with the totals the reference code prints ("Total number of parameters: 54.414 M"
for unet_256, 2.769 M for the pix2pix PatchGAN, 11.378 M for resnet_9blocks, 2.765 M for the
CycleGAN PatchGAN; 31,099,672 for fastai 2.8.12's ``DynamicUnet(create_body(resnet18(), n_in=1,
cut=-2), 2, (256, 256))``).
"""

import pytest
import torch
from torch import nn

from bench.methods.dynamic_unet import ResNet18DynamicUnet
from bench.methods.networks import (
    GANLoss,
    ImagePool,
    NLayerDiscriminator,
    PixelShuffleICNR,
    ResnetGenerator,
    UnetGenerator,
    batch_statistics_only,
    icnr_,
    patchgan_min_size,
    resnet_blocks_for,
    unet_dropout_blocks,
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
    assert dropout_after(net) == [0, 1, 2]
    assert all(m.p == 0.5 for m in modules if isinstance(m, nn.Dropout))
    assert not any(isinstance(m, nn.Dropout) for m in UnetGenerator(1, 2, 8, dropout_blocks=()).modules())


def dropout_after(net: UnetGenerator) -> list[int]:
    """Decoder blocks (0 = innermost) whose up-convolution is followed by dropout."""
    decoder = [m for m in net.modules() if isinstance(m, (nn.ConvTranspose2d, nn.Dropout))]
    ups = [k for k, m in enumerate(decoder) if isinstance(m, nn.ConvTranspose2d)]  # innermost first
    return [block for block, k in enumerate(ups) if k + 1 < len(decoder) and isinstance(decoder[k + 1], nn.Dropout)]


@pytest.mark.parametrize("size, paper, junyanz", [(256, [0, 1, 2], [1, 2, 3]), (64, [0, 1, 2], [1]), (32, [0, 1, 2], [])])
def test_unet_dropout_placement(size, paper, junyanz):
    """Paper: the three decoder blocks taking 1x1, 2x2, 4x4 inputs at every size; the reference code:
    its intermediate ngf*8 blocks (one block further out, fewer below 256)."""
    levels = unet_levels(size)
    with torch.device("meta"):
        for placement, expected in (("paper", paper), ("junyanz", junyanz)):
            net = UnetGenerator(1, 2, levels, ngf=8, dropout_blocks=unet_dropout_blocks(levels, placement))
            assert dropout_after(net) == expected, placement
            # the blocks with dropout take 2**block px inputs
            inputs = [2**block for block in expected]
            assert (inputs == [1, 2, 4]) == (placement == "paper")
    with pytest.raises(ValueError, match="unknown dropout placement"):
        unet_dropout_blocks(8, "random")


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
        reference = ResnetGenerator(3, 3, n_blocks=9)  # G and F of the CycleGANs' default, color_space=rgb
        colorizer = ResnetGenerator(1, 2, n_blocks=9)  # G of their color_space=lab option: L -> ab
        out = colorizer(torch.empty(1, 1, 256, 256))
    assert count(reference) == resnet_params(3, 3, 9) and round(count(reference) / 1e6, 3) == 11.378
    assert count(colorizer) == resnet_params(1, 2, 9)
    assert out.shape == (1, 2, 256, 256)
    modules = list(reference.modules())
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in modules) == 2 + 2 * 9
    assert all(not m.affine for m in modules if isinstance(m, nn.InstanceNorm2d))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in modules)


def dynamic_unet_params(in_ch: int, out_ch: int) -> int:
    """fastai DynamicUnet on create_body(resnet18, n_in=in_ch, cut=-2), norm_type=None, last_cross:
    the body (torchvision's resnet18 less fc, first conv taking in_ch channels), then the middle
    (BatchNorm, 3x3 512->1024->512 with bias), four UnetBlocks (1x1 shuffle conv to 2x the channels
    it keeps, BatchNorm on the skip, two 3x3 convs; the last halves), a final 1x1 shuffle conv, a
    ResBlock of two 3x3 convs on the features + input, a 1x1 conv to out_ch."""
    import torchvision

    resnet = torchvision.models.resnet18()
    body = count(resnet) - count(resnet.fc) - conv(3, 64, 7, False) + conv(in_ch, 64, 7, False)
    total = body + 2 * 512 + conv(512, 1024, 3, True) + conv(1024, 512, 3, True)
    up = 512
    for skip, last in ((256, False), (128, False), (64, False), (64, True)):
        half = up // 2
        total += conv(up, 4 * half, 1, True) + 2 * skip
        width = (half + skip) // 2 if last else half + skip
        total += conv(half + skip, width, 3, True) + conv(width, width, 3, True)
        up = width
    total += conv(up, 4 * up, 1, True)
    merged = up + in_ch
    return total + 2 * conv(merged, merged, 3, True) + conv(merged, out_ch, 1, True)


def test_resnet18_dynamic_unet_is_fastais():
    net = ResNet18DynamicUnet(1, 2)
    assert count(net) == dynamic_unet_params(1, 2) == 31_099_672
    assert count(net.encoder) == 11_170_240  # fastai's body: resnet18 less avgpool/fc, 1-channel stem
    assert [block.out_ch for block in net.blocks] == [512, 384, 256, 96]
    assert net.res_block.convpath[0][0].in_channels == 96 + 1  # the input L is concatenated (last_cross)
    decoder = [m for name, m in net.named_modules() if not name.startswith("encoder")]
    assert sum(isinstance(m, nn.PixelShuffle) for m in decoder) == 5
    assert sum(isinstance(m, nn.BatchNorm2d) for m in decoder) == 5  # middle + one per skip, none in ConvLayers
    assert all(m.bias is not None for m in decoder if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, (nn.Tanh, nn.Sigmoid, nn.ConvTranspose2d)) for m in net.modules())
    with torch.no_grad():
        for size in (32, 64):
            assert net(torch.zeros(2, 1, size, size)).shape == (2, 2, size, size)


def test_resnet18_dynamic_unet_loads_torchvision_weights():
    import torchvision

    net = ResNet18DynamicUnet()
    expected = {k for k in torchvision.models.resnet18().state_dict() if not k.startswith("fc.")}
    assert set(net.encoder.state_dict()) == expected
    torch.manual_seed(3)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in torchvision.models.resnet18().state_dict().items()}
    net.load_torchvision_resnet18(state)
    # fastai's n_in=1: the RGB kernels summed, i.e. the gray image seen as three equal channels
    assert torch.equal(net.encoder.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(net.encoder.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    with pytest.raises(ValueError, match="missing: conv1.weight"):
        net.load_torchvision_resnet18({k: v for k, v in state.items() if k != "conv1.weight"})
    with pytest.raises(ValueError, match="unexpected: extra.weight"):
        net.load_torchvision_resnet18(state | {"extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="wrong shape: layer4.0.conv1.weight"):
        net.load_torchvision_resnet18(state | {"layer4.0.conv1.weight": torch.zeros(512, 256, 1, 1)})


def test_icnr_pixel_shuffle_starts_without_checkerboard():
    torch.manual_seed(0)
    up = PixelShuffleICNR(8, 3)
    x = torch.randn(2, 8, 5, 5)
    y = up(x)
    assert y.shape == (2, 3, 10, 10) and y.abs().sum() > 0
    blocks = y.unfold(2, 2, 2).unfold(3, 2, 2)  # (N, C, 5, 5, 2, 2): each output pixel's 2x2 sub-pixels
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))  # identical: no checkerboard
    # the same up-sampling without ICNR has one
    plain = nn.Sequential(nn.Conv2d(8, 12, 1), nn.ReLU(), nn.PixelShuffle(2))(x).unfold(2, 2, 2).unfold(3, 2, 2)
    assert not torch.equal(plain, plain[..., :1, :1].expand_as(plain))
    # one kaiming-normal kernel per output channel, shared by its 4 sub-pixel channels
    weight = icnr_(torch.empty(1024, 512, 1, 1))
    assert torch.equal(weight, weight[::4].repeat_interleave(4, dim=0))
    assert weight[::4].std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.02)
    with pytest.raises(ValueError, match="divisible by 4"):
        icnr_(torch.empty(6, 2, 1, 1))


def test_batch_statistics_only_leaves_running_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)).train()
    x = torch.randn(3, 1, 8, 8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with batch_statistics_only(net):
        y = net(x)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # nothing updated
    assert net[1].track_running_stats
    assert torch.allclose(y, net(x))  # the same batch statistics as plain training mode...
    assert not torch.equal(net[1].running_mean, before["1.running_mean"])  # ...which also updates them


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
