"""The benchmark's yardstick (tests/benchmarks/reference_nets.py) is the same size of work as colorbench.

Parameter counts and forward FLOPs of the reference-layout networks equal colorbench's at 256x256
(built on the meta device where colorbench allows it, so nothing is allocated), and the reference
training steps run and learn on a tiny CPU batch.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import registry

from tests.benchmarks import reference_nets as ref

META = torch.device("meta")


def parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def forward_gflop(net: torch.nn.Module, channels: int, size: int = 256) -> float:
    counter = FlopCounterMode(display=False)
    with torch.device(META), counter:
        net(torch.empty(1, channels, size, size))
    return counter.get_total_flops() / 1e9


@pytest.fixture(scope="module")
def pix2pix_pair():
    with torch.device(META):
        return ref.Pix2PixColorization(256, META), registry.create_method("pix2pix", size=256, device=META)


def test_pix2pix_nets_match_colorbench(pix2pix_pair):
    reference, colorbench = pix2pix_pair
    assert parameters(reference.netG) == parameters(colorbench.G) == 54_409_858  # U-Net-256: 54.41 M
    assert parameters(reference.netD) == parameters(colorbench.D) == 2_765_633  # 70x70 PatchGAN: 2.77 M
    # The physical reference: G forward 12.0 GFLOP, D forward 6.3 GFLOP per 256x256 image.
    assert round(forward_gflop(reference.netG, 1), 1) == round(forward_gflop(colorbench.G, 1), 1) == 12.0
    assert round(forward_gflop(reference.netD, 3), 1) == round(forward_gflop(colorbench.D, 3), 1) == 6.3


def test_reference_pix2pix_step_costs_86_to_92_gflop(pix2pix_pair):
    reference, _ = pix2pix_pair
    data = {"A": torch.empty(1, 1, 256, 256, device=META), "B": torch.empty(1, 2, 256, 256, device=META)}
    counter = FlopCounterMode(display=False)
    with counter:
        ref.run_reference_steps(reference, data, 1, {})
    assert 86 <= counter.get_total_flops() / 1e9 <= 92


def test_cyclegan_nets_match_colorbench():
    # The Lab setting, whose nets are shaped like these (CPU: its pools' seeds need real tensors)
    colorbench = registry.create_method("cyclegan-paired", size=256, color_space="lab")
    instance = ref.get_norm_layer("instance")
    with torch.device(META):
        G = ref.ResnetGenerator(1, 2, 64, instance, False, n_blocks=9)  # L -> ab, as colorbench's G
        F = ref.ResnetGenerator(3, 1, 64, instance, False, n_blocks=9)  # Lab -> L
        D_color, D_gray = ref.NLayerDiscriminator(3, 64, 3, instance), ref.NLayerDiscriminator(1, 64, 3, instance)
        rgb_resnet9 = ref.ResnetGenerator(3, 3, 64, instance, False, n_blocks=9)
        model = ref.CycleGANColorization(256, META)
    counts = colorbench.parameter_counts()
    assert (parameters(G), parameters(F), parameters(D_color), parameters(D_gray)) == (
        counts["G"], counts["F"], counts["D_color"], counts["D_gray"])
    assert round(parameters(rgb_resnet9) / 1e6, 2) == 11.38  # the usual RGB ResNet-9 figure
    # The benchmark's CycleGAN: A = L, B = Lab, so only G_A's last convolution differs (3 outputs, not 2).
    assert parameters(model.netG_A) - counts["G"] == 7 * 7 * 64 + 1
    assert parameters(model.netG_B) == counts["F"]
    assert (parameters(model.netD_A), parameters(model.netD_B)) == (counts["D_color"], counts["D_gray"])


@pytest.mark.parametrize("method", sorted(ref.REFERENCE_MODELS))
def test_reference_steps_run_and_learn(method):
    torch.manual_seed(0)
    model = ref.REFERENCE_MODELS[method](32, "cpu")
    g = torch.Generator().manual_seed(0)
    data = ref.reference_input(method, torch.rand(2, 1, 32, 32, generator=g) * 2 - 1,
                               torch.rand(2, 2, 32, 32, generator=g) - 0.5)
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.nets().items()}
    ref.run_reference_steps(model, data, 1, {})
    assert all(math.isfinite(v) for v in model.get_current_losses().values())
    for name, net in model.nets().items():  # every network was updated
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name


def test_image_pool_swaps_after_filling():
    pool = ref.ImagePool(2, seed=0)
    first = pool.query(torch.zeros(2, 1, 1, 1))
    assert first.shape == (2, 1, 1, 1) and pool.num_imgs == 2
    out = pool.query(torch.ones(8, 1, 1, 1))
    returned_old = int((out == 0).sum())
    assert 0 < returned_old <= 2  # stored zeros come back at most once each; the rest are the new ones
