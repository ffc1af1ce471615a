"""The adversarial methods and unet-l2 on tiny images: they learn, resume exactly, and refuse bad input."""

import functools
import io
import time

import pytest
import torch
import torch.nn.functional as F

from bench import registry
from bench.api import Batch, BenchError, normalized_lab_to_rgb, rgb_to_normalized_lab, training_step
from bench.color import float_to_uint8, uint8_to_float
from bench.methods.networks import ResnetBlock
from bench.methods.pix2pix_resnet18 import Pix2PixResNet18
from bench.progress import progress_bar

SIZE = 32
# Narrow networks keep the tests fast; the code paths are the full ones.
SMALL = {
    "pix2pix": {"ndf": 16},
    "pix2pix-resnet18-scratch": {"ndf": 16},
    "cyclegan-paired": {"ngf": 8, "ndf": 8, "n_blocks": 2, "batch_size": 4},
    "cyclegan-unpaired": {"ngf": 8, "ndf": 8, "n_blocks": 2, "batch_size": 4},
}


def colorize_uint8(method, images: torch.Tensor, *, batch_size: int, label: str = "colorize"):
    """uint8 RGB (N, 3, H, W) -> (uint8 predictions on the method's device, seconds).

    The input's colour is discarded: the method sees only L and the output is L + predicted ab,
    quantised to 8 bits exactly as it would be saved to a PNG.
    """
    method.eval_mode()
    outputs = []
    start = time.perf_counter()
    with torch.no_grad(), progress_bar(label, total=images.shape[0]) as advance:
        for first in range(0, images.shape[0], batch_size):
            chunk = uint8_to_float(images[first : first + batch_size].to(method.device))
            L, _ = rgb_to_normalized_lab(chunk)
            ab = method.colorize(L)
            outputs.append(float_to_uint8(normalized_lab_to_rgb(L, ab)))
            advance(chunk.shape[0])
    if method.device.type == "cuda":
        torch.cuda.synchronize(method.device)
    return torch.cat(outputs), time.perf_counter() - start


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
    "unet-l2": ("G_L2",),
    "pix2pix-resnet18-scratch": ("G_L1",),
    "cyclegan-paired": ("cycle_gray", "cycle_color"),
    "cyclegan-unpaired": ("cycle_gray", "cycle_color"),
}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_a_few_steps_reduce_the_training_loss(name, batch):
    method = build(name)
    steps = 8
    # progress stays before the lr decay (0.5) and crosses pix2pix-resnet18's stage switch (0.3)
    history = [training_step(method, batch, k / (2 * steps)) for k in range(steps)]
    objective = [sum(float(h[key]) for key in OBJECTIVES[name]) for h in history]
    assert objective[-1] < 0.9 * objective[0], objective
    assert all(torch.isfinite(torch.as_tensor(float(v))) for h in history for v in h.values())
    method.eval_mode()
    with torch.no_grad():
        ab = method.colorize(batch.L)
    assert ab.shape == (4, 2, SIZE, SIZE) and torch.isfinite(ab).all()
    if "resnet18" not in name:  # fastai's DynamicUnet has no output activation (y_range=None)
        assert ab.abs().max() <= 1


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
        ("unet-l2", {}, 3),
        ("pix2pix-resnet18-scratch", {"stage1_fraction": 0.5}, 2),  # resumes right at the stage switch
        ("cyclegan-paired", {"pool_size": 3}, 3),  # the default (RGB); the pools are full and swapping by then
        ("cyclegan-unpaired", {"color_space": "lab", "pool_size": 3}, 3),  # the Lab option
    ],
)
def test_save_load_continue_equals_not_stopping(name, options, steps, batch):
    total = steps + 2
    method = build(name, **options)
    for k in range(steps):
        training_step(method, batch, k / total)
    state = snapshot(method)
    expected = training_step(method, batch, steps / total)
    expected_next = training_step(method, batch, (steps + 1) / total)

    torch.manual_seed(123)  # a different RNG state: the checkpoint must restore it
    resumed = build(name, **options)
    resumed.load_state_dict(state)
    got = training_step(resumed, batch, steps / total)
    got_next = training_step(resumed, batch, (steps + 1) / total)
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(torch.as_tensor(got[key]), torch.as_tensor(expected[key])), key
        assert torch.equal(torch.as_tensor(got_next[key]), torch.as_tensor(expected_next[key])), key
    assert_same_state(method, resumed)
    for a, b in zip(method.optimizers.values(), resumed.optimizers.values()):
        assert [g["lr"] for g in a.param_groups] == [g["lr"] for g in b.param_groups]


def test_pix2pix_options_and_test_modes(batch):
    method = build("pix2pix")
    assert method.options.batch_size == 1 and method.options.test_mode == "paper"  # the paper's defaults
    training_step(method, batch, 0.0)
    method.eval_mode()
    assert method.G.training and not method.D.training  # dropout and batch statistics at test time
    with torch.no_grad():
        assert not torch.equal(method.colorize(batch.L), method.colorize(batch.L))  # dropout is the noise
    evaluated = build("pix2pix", test_mode="eval")
    training_step(evaluated, batch, 0.0)
    evaluated.eval_mode()
    assert not evaluated.G.training
    with torch.no_grad():
        assert torch.equal(evaluated.colorize(batch.L), evaluated.colorize(batch.L))  # deterministic
    assert build("pix2pix", gan_mode="lsgan").gan_loss.loss.__class__.__name__ == "MSELoss"
    assert build("pix2pix", real_label=0.9).gan_loss.real_label == 0.9
    for bad in ({"real_label": 0.3}, {"lambda_l1": -1}, {"gan_mode": "wgan"}, {"ngf": 0},
                {"dropout_placement": "late"}, {"test_mode": "train"}):
        with pytest.raises(BenchError, match="option"):
            build("pix2pix", **bad)
    with pytest.raises(BenchError, match="power-of-two"):
        registry.create_method("pix2pix", size=48)
    with pytest.raises(BenchError, match="smallest"):
        registry.create_method("pix2pix", size=32, n_layers_d=4)  # a 4-layer PatchGAN needs 48 px


def uint8_images(n: int, seed: int) -> torch.Tensor:
    return (smooth_images(n, seed) * 255).round().to(torch.uint8)


@pytest.mark.parametrize("name", ["pix2pix", "unet-l2"])
def test_paper_test_mode_does_not_depend_on_the_eval_batch(name, batch):
    """Paper mode colorizes each test image on its own (batch statistics of that image, dropout on):
    the same seed gives the same outputs whatever the evaluation batch size, and the running
    statistics stay as trained."""
    method = build(name)
    for k in range(2):
        training_step(method, batch, k / 4)
    trained = {k: v.clone() for k, v in method.G.state_dict().items()}
    images = uint8_images(5, 7)
    outputs = []
    for eval_batch in (5, 2, 1):
        torch.manual_seed(11)
        outputs.append(colorize_uint8(method, images, batch_size=eval_batch)[0])
    assert all(torch.equal(outputs[0], out) for out in outputs[1:])
    assert all(torch.equal(v, trained[k]) for k, v in method.G.state_dict().items())

    # Without dropout, an image's colours are a function of that image alone...
    method = build(name, dropout=False)
    training_step(method, batch, 0.0)
    method.eval_mode()
    L = rgb_to_normalized_lab(smooth_images(5, 7))[0]
    with torch.no_grad():
        alone = method.colorize(L)
        assert torch.allclose(method.colorize(L[:2]), alone[:2], atol=1e-6)
        # ...unlike a plain training-mode pass, whose statistics span the whole batch
        assert not torch.allclose(method.G(L)[:2], alone[:2], atol=1e-3)


def test_pix2pix_update_order_and_decay(batch):
    method = build("pix2pix")
    d_before = [p.clone() for p in method.D.parameters()]
    losses = training_step(method, batch, 0.0)
    assert set(losses) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert any(not torch.equal(a, b) for a, b in zip(d_before, method.D.parameters()))
    assert all(p.requires_grad for p in method.D.parameters())  # unfrozen again after G's update
    # lr: constant until decay_start (0.5), then linearly to zero at the end of the budget
    for progress, factor in ((0.0, 1.0), (0.5, 1.0), (0.75, 0.5), (1.0, 0.0)):
        training_step(method, batch, progress)
        for optimizer in method.optimizers.values():
            assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * factor)


def test_resnet18_stages(batch):
    defaults = build("pix2pix-resnet18-scratch")
    options = defaults.options
    # the write-up's recipe: batch 16, 20 + 20 epochs, Adam 1e-4 (0.5, 0.999), constant rate
    assert (options.batch_size, options.stage1_fraction, options.lr, options.pretrain_lr) == (16, 0.5, 1e-4, 1e-4)
    for optimizer in defaults.optimizers.values():
        assert optimizer.param_groups[0]["lr"] == 1e-4 and optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert all(defaults.lr_factor(p) == 1.0 for p in (0.0, 0.3, 0.5, 0.9, 1.0))
    assert build("pix2pix-resnet18-scratch", pretrain_beta1=0.9).optimizers["G_L1"].param_groups[0]["betas"] == (0.9, 0.999)

    method = build("pix2pix-resnet18-scratch", stage1_fraction=0.4, decay_start=0.5)
    d_before = [p.clone() for p in method.D.parameters()]
    stage1 = training_step(method, batch, 0.0)
    assert set(stage1) == {"G_L1"}
    assert all(torch.equal(a, b) for a, b in zip(d_before, method.D.parameters()))  # D waits for stage 2
    assert method.optimizers["G_L1"].param_groups[0]["lr"] == pytest.approx(1e-4)
    stage2 = training_step(method, batch, 0.4)
    assert set(stage2) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    # with decay_start < 1 each stage has its own constant-then-linear-decay schedule
    assert method.lr_factor(0.1) == 1.0 and method.lr_factor(0.3) == pytest.approx(0.5)
    assert method.lr_factor(0.4) == 1.0 and method.lr_factor(0.85) == pytest.approx(0.5)
    assert method.lr_factor(1.0) == 0.0
    for bad in ({"stage1_fraction": 1.0}, {"pretrain_beta1": 1.0}, {"pretrain_lr": 0}):
        with pytest.raises(BenchError, match="option"):
            build("pix2pix-resnet18-scratch", **bad)
    with pytest.raises(BenchError, match="multiple of 32"):
        registry.create_method("pix2pix-resnet18-scratch", size=48)


def test_unet_l2_is_the_pix2pix_generator_trained_with_l2(batch):
    """unet-l2 and pix2pix share the generator code: the same builder, class, options and init."""
    from bench.methods.pix2pix import Pix2Pix, UnetL2

    assert UnetL2.build_generator is Pix2Pix.build_generator
    assert UnetL2.colorize is Pix2Pix.colorize and UnetL2.eval_mode is Pix2Pix.eval_mode
    shared = UnetL2.Options.describe()
    assert shared.items() <= Pix2Pix.Options.describe().items()  # every generator option, same default
    for options in ({}, {"ngf": 8, "dropout_placement": "junyanz"}):
        l2, gan = build("unet-l2", **options), build("pix2pix", **options)  # same seed
        assert type(l2.G) is type(gan.G)
        assert l2.G.state_dict().keys() == gan.G.state_dict().keys()
        assert all(torch.equal(a, b) for a, b in zip(l2.G.state_dict().values(), gan.G.state_dict().values()))
        assert [type(m) for m in l2.G.modules()] == [type(m) for m in gan.G.modules()]
    assert set(l2.nets) == {"G"} and set(l2.optimizers) == {"G"}  # no discriminator
    assert l2.optimizers["G"].param_groups[0]["betas"] == gan.optimizers["G"].param_groups[0]["betas"]
    assert l2.options.lr == gan.options.lr == 2e-4

    # A trained pix2pix generator loads into unet-l2 as is, and colorizes the same.
    training_step(gan, batch, 0.0)
    l2.G.load_state_dict(gan.G.state_dict())
    for method in (gan, l2):
        method.eval_mode()
        method.G.eval()
    with torch.no_grad():
        assert torch.equal(l2.colorize(batch.L), gan.colorize(batch.L))

    # Its loss is the mean squared error of ab, nothing else.
    method = build("unet-l2", dropout=False)
    method.G.eval()  # fixed statistics, so the loss can be recomputed exactly
    with torch.no_grad():
        expected = F.mse_loss(method.G(batch.L), batch.ab)
    assert torch.allclose(training_step(method, batch, 0.0)["G_L2"], expected)


@pytest.mark.parametrize("name, bad, good", [
    ("baseline", 36, 64), ("unet-l2", 48, 32), ("pix2pix", 16, 64), ("pix2pix-resnet18", 48, 64),
    ("pix2pix-resnet18-scratch", 16, 32), ("cyclegan-paired", 30, 32), ("cyclegan-unpaired", 30, 32),
])
def test_check_size_refuses_before_building(name, bad, good):
    cls = registry.methods().get(name).cls
    options = cls.Options.from_dict({})
    with pytest.raises(BenchError, match=f"^{name}: .*{bad}"):
        cls.check_size(bad, options)
    cls.check_size(good, options)


def test_cyclegan_colour_spaces(batch):
    rgb = build("cyclegan-paired")  # the default: the reference's 3-channel images in [-1, 1]
    assert rgb.options.color_space == "rgb"
    assert (rgb.G.model[1].in_channels, rgb.G.model[-2].out_channels) == (3, 3)  # gray RGB -> RGB
    assert (rgb.F.model[1].in_channels, rgb.F.model[-2].out_channels) == (3, 3)  # RGB -> gray RGB
    losses = training_step(rgb, batch, 0.0)
    assert {"idt_G", "idt_F"} <= set(losses) and rgb.lambda_identity == 0.5  # the reference's 0.5 * lambda
    # the gray domain is L rendered as a gray RGB image: it must not carry the true colours
    gray_rgb = rgb.to_gray(batch.L)
    assert torch.allclose(gray_rgb[:, 0], gray_rgb[:, 1], atol=1e-4) and torch.allclose(gray_rgb[:, 1], gray_rgb[:, 2], atol=1e-4)
    rgb.eval_mode()
    with torch.no_grad():
        ab = rgb.colorize(batch.L)
        image = (rgb.G(gray_rgb) + 1) / 2
    # the harness's contract: normalised ab, those of G's RGB image (paired with the input's L downstream)
    assert ab.shape == (4, 2, SIZE, SIZE) and ab.abs().max() <= 1
    assert torch.allclose(ab, rgb_to_normalized_lab(image.clamp(0, 1))[1], atol=1e-5)

    lab = build("cyclegan-paired", color_space="lab")
    assert (lab.G.model[1].in_channels, lab.G.model[-2].out_channels) == (1, 2)  # L -> ab
    assert (lab.F.model[1].in_channels, lab.F.model[-2].out_channels) == (3, 1)  # Lab -> L
    losses = training_step(lab, batch, 0.0)
    assert not any(key.startswith("idt") for key in losses)  # identity impossible for L -> ab
    default_blocks = build("cyclegan-paired", n_blocks=None, ngf=4).G.model
    assert sum(isinstance(m, ResnetBlock) for m in default_blocks) == 6  # 6 below 256, 9 at 256


def desaturate(method, color: torch.Tensor) -> torch.Tensor:
    """The colour -> gray map F would ideally learn: keep the lightness of its input, drop the colour."""
    if method.lab:
        return color[:, :1]
    return method.to_gray(rgb_to_normalized_lab((color + 1) / 2)[0])


@pytest.mark.parametrize("color_space", ["rgb", "lab"])
def test_cyclegan_gray_side_cycle_constrains_G_in_rgb_only(color_space, batch):
    """The Lab option's degeneracy and the RGB default's fix. In Lab, F gets the real L inside G's
    colour image, so it can rebuild the gray image without G: with F desaturating, the gray-side
    cycle is exactly 0 and gives G no gradient whatever G does. In RGB, F's input is G's output
    alone: the same F leaves a cycle loss that G must lower (keep the input's lightness)."""
    method = build("cyclegan-paired", color_space=color_space, ngf=4, ndf=4)
    seen = {}
    hooks = [method.G.register_forward_hook(lambda net, args, out: seen.setdefault("G", out)),
             method.F.register_forward_pre_hook(lambda net, args: seen.setdefault("F", args[0]))]
    training_step(method, batch, 0.0)  # the first G and F calls of a step are the gray-side cycle's
    for hook in hooks:
        hook.remove()
    if color_space == "rgb":
        assert seen["F"] is seen["G"]  # F's input is G's output, nothing else
    else:
        assert torch.equal(seen["F"][:, :1], method.to_gray(batch.L)) and torch.equal(seen["F"][:, 1:], seen["G"])

    gray, color = method.domains(batch)
    method.F = functools.partial(desaturate, method)
    _, rec_gray, _, _ = method.cycles(gray, color)
    loss = F.l1_loss(rec_gray, gray) * method.options.lambda_cycle
    grads = torch.autograd.grad(loss, list(method.G.parameters()), allow_unused=True)
    norm = torch.sqrt(sum((g**2).sum() for g in grads if g is not None))
    if color_space == "rgb":
        assert loss > 0.1 and norm > 1e-3
    else:
        assert loss == 0 and norm == 0


def test_cyclegan_pairing(batch):
    paired, unpaired = build("cyclegan-paired"), build("cyclegan-unpaired")
    assert not paired.unpaired and unpaired.unpaired
    gray, color = paired.domains(batch)
    assert torch.equal(gray, paired.to_gray(batch.L)) and torch.equal(color, paired.to_color(batch.L, batch.ab))
    with torch.no_grad():
        fake_L = rgb_to_normalized_lab((paired.translate(gray) + 1) / 2)[0]
    assert (fake_L - batch.L).abs().mean() > 0.05  # RGB: D_color sees G's lightness, not the real L
    gray, color = unpaired.domains(batch)
    assert torch.equal(gray, unpaired.to_gray(batch.L))
    assert torch.equal(color, unpaired.to_color(batch.color_L, batch.color_ab))
    # the Lab option, paired: real and fake colour images share the identical L channel, so
    # D_color is pix2pix's conditional discriminator D(L, ab)
    lab = build("cyclegan-paired", color_space="lab")
    gray, color = lab.domains(batch)
    with torch.no_grad():
        assert torch.equal(lab.translate(gray)[:, :1], color[:, :1])
    with pytest.raises(BenchError, match="independently drawn"):
        training_step(unpaired, Batch(batch.L, batch.ab), 0.0)
    for bad in ({"color_space": "hsv"}, {"lambda_cycle": -1}, {"n_blocks": -2}):
        with pytest.raises(BenchError, match="option"):
            build("cyclegan-paired", **bad)
    with pytest.raises(BenchError, match="multiple of 4"):
        registry.create_method("cyclegan-paired", size=30)


def test_registered_as_plugins():
    names = registry.list_methods()
    for name in ("unet-l2", "pix2pix", "pix2pix-resnet18", "pix2pix-resnet18-scratch", "cyclegan-paired",
                 "cyclegan-unpaired"):
        entry = registry.methods().get(name)
        assert name in names and entry.plugin == "colorbench (built-in)" and entry.description
    assert issubclass(registry.methods().get("pix2pix-resnet18-scratch").cls, Pix2PixResNet18)
