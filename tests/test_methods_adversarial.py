"""The four adversarial methods on tiny images: they learn, resume exactly, and refuse bad input."""

import io

import pytest
import torch
import torch.nn.functional as F

from bench import registry
from bench.api import Batch, BenchError, rgb_to_normalized_lab
from bench.methods.networks import ResnetBlock
from bench.methods.pix2pix_resnet18 import Pix2PixResNet18

SIZE = 32
# Narrow networks keep the tests fast; the code paths are the full ones.
SMALL = {
    "pix2pix": {"ndf": 16},
    "pix2pix-resnet18-scratch": {"ndf": 16},
    "cyclegan-paired": {"ngf": 16, "ndf": 16, "n_blocks": 2, "batch_size": 4},
    "cyclegan-unpaired": {"ngf": 16, "ndf": 16, "n_blocks": 2, "batch_size": 4},
}


def smooth_images(n: int, seed: int, size: int = SIZE) -> torch.Tensor:
    """Smooth random colour images (RGB in [0, 1]): learnable, unlike white noise."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def batch() -> Batch:
    L, ab = rgb_to_normalized_lab(smooth_images(4, 0))
    color_L, color_ab = rgb_to_normalized_lab(smooth_images(4, 1))
    return Batch(L, ab, color_L, color_ab)


def build(name, **options):
    torch.manual_seed(0)
    return registry.create_method(name, size=SIZE, **(SMALL.get(name, {}) | options))


# Each method's own objective: L1 to the true ab for the pix2pix family, the cycle losses for CycleGAN.
OBJECTIVES = {
    "pix2pix": ("G_L1",),
    "pix2pix-resnet18-scratch": ("G_L1",),
    "cyclegan-paired": ("cycle_gray", "cycle_color"),
    "cyclegan-unpaired": ("cycle_gray", "cycle_color"),
}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_a_few_steps_reduce_the_training_loss(name, batch):
    method = build(name)
    steps = 8
    # progress stays before the lr decay (0.5) and crosses pix2pix-resnet18's stage switch (0.3)
    history = [method.step(batch, k / (2 * steps)) for k in range(steps)]
    objective = [sum(float(h[key]) for key in OBJECTIVES[name]) for h in history]
    assert objective[-1] < 0.9 * objective[0], objective
    assert all(torch.isfinite(torch.as_tensor(float(v))) for h in history for v in h.values())
    method.eval_mode()
    with torch.no_grad():
        ab = method.colorize(batch.L)
    assert ab.shape == (4, 2, SIZE, SIZE) and ab.abs().max() <= 1


def snapshot(method) -> dict:
    """A checkpoint as the harness stores it: through torch.save and a weights_only load."""
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def assert_same_state(a, b):
    for name in a.nets:
        for (key, x), (_, y) in zip(a.nets[name].state_dict().items(), b.nets[name].state_dict().items()):
            assert torch.equal(x, y), f"{name}.{key}"


@pytest.mark.parametrize(
    "name, options, steps",
    [
        ("pix2pix", {}, 3),  # dropout draws from torch's RNG
        ("pix2pix-resnet18-scratch", {"stage1_fraction": 0.5}, 2),  # resumes right at the stage switch
        ("cyclegan-unpaired", {"pool_size": 3}, 3),  # the pools are full and swapping by then
        ("cyclegan-paired", {"color_space": "rgb", "pool_size": 3}, 3),
    ],
)
def test_save_load_continue_equals_not_stopping(name, options, steps, batch):
    total = steps + 2
    method = build(name, **options)
    for k in range(steps):
        method.step(batch, k / total)
    state = snapshot(method)
    expected = method.step(batch, steps / total)
    expected_next = method.step(batch, (steps + 1) / total)

    torch.manual_seed(123)  # a different RNG state: the checkpoint must restore it
    resumed = build(name, **options)
    resumed.load_state_dict(state)
    got = resumed.step(batch, steps / total)
    got_next = resumed.step(batch, (steps + 1) / total)
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(torch.as_tensor(got[key]), torch.as_tensor(expected[key])), key
        assert torch.equal(torch.as_tensor(got_next[key]), torch.as_tensor(expected_next[key])), key
    assert_same_state(method, resumed)
    for a, b in zip(method.optimizers.values(), resumed.optimizers.values()):
        assert [g["lr"] for g in a.param_groups] == [g["lr"] for g in b.param_groups]


def test_pix2pix_options_and_test_modes(batch):
    method = build("pix2pix")
    method.step(batch, 0.0)
    method.eval_mode()
    with torch.no_grad():
        assert torch.equal(method.colorize(batch.L), method.colorize(batch.L))  # deterministic
    paper = build("pix2pix", test_mode="paper")
    paper.step(batch, 0.0)
    paper.eval_mode()
    assert paper.G.training  # dropout and batch statistics at test time, as in the paper
    with torch.no_grad():
        assert not torch.equal(paper.colorize(batch.L), paper.colorize(batch.L))  # dropout is the noise
    assert build("pix2pix", gan_mode="lsgan").gan_loss.loss.__class__.__name__ == "MSELoss"
    assert build("pix2pix", real_label=0.9).gan_loss.real_label == 0.9
    for bad in ({"real_label": 0.3}, {"lambda_l1": -1}, {"gan_mode": "wgan"}, {"ngf": 0}):
        with pytest.raises(BenchError, match="option"):
            build("pix2pix", **bad)
    with pytest.raises(BenchError, match="power-of-two"):
        registry.create_method("pix2pix", size=48)
    with pytest.raises(BenchError, match="smallest"):
        registry.create_method("pix2pix", size=16)


def test_pix2pix_update_order_and_decay(batch):
    method = build("pix2pix")
    d_before = [p.clone() for p in method.D.parameters()]
    losses = method.step(batch, 0.0)
    assert set(losses) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert any(not torch.equal(a, b) for a, b in zip(d_before, method.D.parameters()))
    assert all(p.requires_grad for p in method.D.parameters())  # unfrozen again after G's update
    # lr: constant until decay_start (0.5), then linearly to zero at the end of the budget
    for progress, factor in ((0.0, 1.0), (0.5, 1.0), (0.75, 0.5), (1.0, 0.0)):
        method.step(batch, progress)
        for optimizer in method.optimizers.values():
            assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * factor)


def test_resnet18_stages(batch):
    method = build("pix2pix-resnet18-scratch", stage1_fraction=0.4, decay_start=0.5)
    d_before = [p.clone() for p in method.D.parameters()]
    stage1 = method.step(batch, 0.0)
    assert set(stage1) == {"G_L1"}
    assert all(torch.equal(a, b) for a, b in zip(d_before, method.D.parameters()))  # D waits for stage 2
    assert method.optimizers["G_L1"].param_groups[0]["lr"] == pytest.approx(1e-4)
    stage2 = method.step(batch, 0.4)
    assert set(stage2) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    # each stage has its own constant-then-linear-decay schedule
    assert method.lr_factor(0.1) == 1.0 and method.lr_factor(0.3) == pytest.approx(0.5)
    assert method.lr_factor(0.4) == 1.0 and method.lr_factor(0.85) == pytest.approx(0.5)
    assert method.lr_factor(1.0) == 0.0
    with pytest.raises(BenchError, match="stage1_fraction"):
        build("pix2pix-resnet18-scratch", stage1_fraction=1.0)
    with pytest.raises(BenchError, match="multiple of 32"):
        registry.create_method("pix2pix-resnet18-scratch", size=48)


def test_cyclegan_colour_spaces(batch):
    lab = build("cyclegan-paired")
    assert (lab.G.model[1].in_channels, lab.G.model[-2].out_channels) == (1, 2)  # L -> ab
    assert (lab.F.model[1].in_channels, lab.F.model[-2].out_channels) == (3, 1)  # Lab -> L
    losses = lab.step(batch, 0.0)
    assert not any(key.startswith("idt") for key in losses)  # identity impossible for L -> ab
    rgb = build("cyclegan-paired", color_space="rgb")
    assert (rgb.G.model[1].in_channels, rgb.G.model[-2].out_channels) == (3, 3)
    losses = rgb.step(batch, 0.0)
    assert {"idt_G", "idt_F"} <= set(losses)
    rgb.eval_mode()
    with torch.no_grad():
        ab = rgb.colorize(batch.L)
    assert ab.shape == (4, 2, SIZE, SIZE)
    # RGB mode colorizes through the RGB gray image of L; it must not see the true colours
    gray_rgb = rgb.to_gray(batch.L)
    assert torch.allclose(gray_rgb[:, 0], gray_rgb[:, 1], atol=1e-4) and torch.allclose(gray_rgb[:, 1], gray_rgb[:, 2], atol=1e-4)
    default_blocks = build("cyclegan-paired", n_blocks=None, ngf=8).G.model
    assert sum(isinstance(m, ResnetBlock) for m in default_blocks) == 6  # 6 below 256, 9 at 256


def test_cyclegan_pairing(batch):
    paired, unpaired = build("cyclegan-paired"), build("cyclegan-unpaired")
    assert not paired.unpaired and unpaired.unpaired
    gray, color = paired.domains(batch)
    assert torch.equal(color[:, :1], gray)  # each gray image with its own colour version
    gray, color = unpaired.domains(batch)
    assert torch.equal(gray, batch.L) and torch.equal(color[:, :1], batch.color_L)
    with pytest.raises(BenchError, match="independently drawn"):
        unpaired.step(Batch(batch.L, batch.ab), 0.0)
    for bad in ({"color_space": "hsv"}, {"lambda_cycle": -1}, {"n_blocks": -2}):
        with pytest.raises(BenchError, match="option"):
            build("cyclegan-paired", **bad)
    with pytest.raises(BenchError, match="multiple of 4"):
        registry.create_method("cyclegan-paired", size=30)


def test_registered_as_plugins():
    names = registry.list_methods()
    for name in ("pix2pix", "pix2pix-resnet18", "pix2pix-resnet18-scratch", "cyclegan-paired", "cyclegan-unpaired"):
        entry = registry.methods().get(name)
        assert name in names and entry.plugin == "colorbench (built-in)" and entry.description
    assert issubclass(registry.methods().get("pix2pix-resnet18-scratch").cls, Pix2PixResNet18)
