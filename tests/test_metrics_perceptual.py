"""LPIPS equals the lpips package (AlexNet, v0.1) and reproduces its published example distances."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import lpips
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from bench.errors import BenchError, Unavailable
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.metric import MetricContext
from bench.metrics.perceptual import LPIPS, load_lpips, trunk_state_dict
from bench.weights import WeightStore

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("shared_weights_dir")  # the whole module needs the real trunk


@pytest.fixture(scope="session")
def trunk(shared_weights_dir) -> Path:
    return shared_weights_dir / "alexnet-features-lpips.pth"


@pytest.fixture(scope="module")
def metric(shared_weights_dir) -> LPIPS:
    return LPIPS(MetricContext(device=CPU, weights=WeightStore(shared_weights_dir)))


@pytest.fixture(scope="module")
def reference(trunk) -> lpips.LPIPS:
    """The lpips package built its own way: torchvision's AlexNet (carrying the trunk weights)
    sliced by lpips itself, not by our key mapping."""
    alexnet = torchvision.models.alexnet()
    missing, _ = alexnet.load_state_dict(torch.load(trunk, weights_only=True), strict=False)
    assert all(key.startswith("classifier.") for key in missing)  # LPIPS never uses the classifier
    with mock.patch.object(lpips.pretrained_networks.tv, "alexnet", lambda *args, **kwargs: alexnet):
        return lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()


def read_example(folder: Path, name: str) -> np.ndarray:
    # lpips.load_image needs OpenCV (not installed); PIL decodes these PNGs to the same RGB array.
    with Image.open(folder / f"{name}.png") as image:
        return np.array(image.convert("RGB"))


def as_unit(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255


def test_published_example_distances(metric, reference, shared_weights_dir):
    examples = shared_weights_dir / "lpips-example"
    if not examples.is_dir():
        pytest.skip(f"lpips's example images not found in {examples}")
    ref, p0, p1 = (read_example(examples, n) for n in ("ex_ref", "ex_p0", "ex_p1"))
    ours = metric.update(torch.cat([as_unit(p0), as_unit(p1)]), torch.cat([as_unit(ref), as_unit(ref)]))
    # The official implementation's published output for these images: 0.722 and 0.138.
    assert round(ours[0].item(), 3) == 0.722
    assert round(ours[1].item(), 3) == 0.138
    # lpips' own image-to-tensor path ([-1, 1]) gives the same numbers.
    theirs = [reference(lpips.im2tensor(ref), lpips.im2tensor(p)).item() for p in (p0, p1)]
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 3, 64, 64), (2, 3, 48, 80)])
def test_equals_lpips_package_on_random_pairs(metric, reference, shape):
    g = torch.Generator().manual_seed(shape[-1])
    target = torch.rand(shape, generator=g)
    pred = (target + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1)
    ours = metric.update(pred, target)
    assert ours.shape == (shape[0],)
    with torch.no_grad():
        theirs = reference(pred * 2 - 1, target * 2 - 1).flatten()
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)


def test_guards_the_input_range(metric, reference, shared_weights_dir):
    g = torch.Generator().manual_seed(7)
    target = torch.rand(2, 3, 64, 64, generator=g)
    pred = (target + 0.2 * torch.randn(2, 3, 64, 64, generator=g)).clamp(0, 1)
    with torch.no_grad():
        unscaled = reference(pred, target).flatten()  # the usual mistake: [0, 1] straight into lpips
    assert (metric.update(pred, target) - unscaled).abs().min() > 1e-3  # ... gives other numbers
    metric.finish()  # in range: nothing to report
    # Already-scaled input would be scaled twice, 0-255 input is far off: both refused. The range is
    # tracked on the device during the pass and reported after it.
    for bad_pred, bad_target in ((pred * 2 - 1, target), (pred, target * 255)):
        fresh = LPIPS(MetricContext(device=CPU, weights=WeightStore(shared_weights_dir)))
        fresh.update(bad_pred, bad_target)
        with pytest.raises(ValueError, match=r"must be RGB in \[0, 1\]"):
            fresh.finish()


def test_out_of_range_input_fails_the_trunk_metrics_in_a_pass(shared_weights_dir):
    context = MetricContext(device=CPU, weights=WeightStore(shared_weights_dir))
    metrics, _ = build_metrics(["lpips", "psnr", "fd-alex", "kd-alex"], context)
    images = torch.rand(2, 3, 32, 32)
    from bench.evaluation import metric_pass as engine

    # A broken conversion hands the metrics [1, 2] instead of [0, 1].
    with mock.patch.object(engine, "uint8_to_float", lambda u8: u8.float() / 255 + 1):
        results = evaluate([(images.mul(255).byte(), images.mul(255).byte())], metrics, 2)
    for name in ("lpips", "fd-alex", "kd-alex"):
        assert results[name]["status"] == "failed" and "must be RGB in [0, 1]" in results[name]["reason"]
    assert results["psnr"]["status"] == "ok"


def test_conv5_features_are_the_trunks_conv5_output(metric, trunk):
    """fd-alex/kd-alex's features: torchvision AlexNet ``features[:12]`` (conv5 and its ReLU) with the
    trunk's weights, on LPIPS's input normalisation written out, globally average-pooled."""
    alexnet = torchvision.models.alexnet()
    alexnet.load_state_dict(torch.load(trunk, weights_only=True), strict=False)
    conv5 = alexnet.features[:12].eval()
    assert isinstance(conv5[10], torch.nn.Conv2d) and conv5[10].out_channels == 256
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)  # lpips' ScalingLayer
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    images = torch.rand(3, 3, 64, 48, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        expected = conv5(((images * 2 - 1) - shift) / scale).mean(dim=(2, 3))
        ours = metric.trunk.conv5(images)
    assert ours.shape == (3, 256) and ours.std(dim=0).mean() > 1e-3
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_one_trunk_pass_per_image_tensor_shared_in_a_pass(reference, shared_weights_dir):
    """LPIPS, fd-alex and kd-alex in one pass: the trunk runs once on each prediction and target
    batch, and LPIPS still equals the lpips package."""
    context = MetricContext(device=CPU, weights=WeightStore(shared_weights_dir))
    metrics, unavailable = build_metrics(["fd-alex", "lpips", "kd-alex"], context)
    assert not unavailable
    trunk = context.shared["lpips-alexnet-trunk"]
    calls = []
    forward = trunk.model.net.forward
    with mock.patch.object(trunk.model.net, "forward", lambda x: calls.append(len(x)) or forward(x)):
        g = torch.Generator().manual_seed(5)
        batches = [tuple(torch.randint(0, 256, (4, 3, 40, 40), generator=g, dtype=torch.uint8) for _ in "pt")
                   for _ in range(2)]
        results = evaluate(batches, metrics, 8)
    assert calls == [4, 4, 4, 4]  # prediction and target of each batch, once each
    pred = torch.cat([p for p, _ in batches]).float() / 255
    target = torch.cat([t for _, t in batches]).float() / 255
    with torch.no_grad():
        expected = reference(pred * 2 - 1, target * 2 - 1).flatten().numpy()
    np.testing.assert_allclose(results["lpips"]["per_image"], expected, atol=1e-6)
    assert results["fd-alex"]["status"] == "ok" and results["kd-alex"]["status"] == "ok"


def test_full_torchvision_state_dict_is_accepted(tmp_path, metric, trunk):
    state = torch.load(trunk, weights_only=True)
    full = {**state, "classifier.1.weight": torch.zeros(4, 4), "classifier.1.bias": torch.zeros(4)}
    mapped = trunk_state_dict(full, metric.model.net)
    assert set(mapped) == set(metric.model.net.state_dict())  # features.3.weight -> slice2.3.weight, ...
    torch.save(full, tmp_path / "full.pth")
    x, y = torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40)
    torch.testing.assert_close(load_lpips(str(tmp_path / "full.pth"), "cpu")(x, y), metric.model(x, y))


def test_rejects_a_file_that_is_not_an_alexnet_trunk(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(BenchError, match="not a usable AlexNet trunk"):
        load_lpips(str(tmp_path / "bad.pth"), "cpu")


def test_unavailable_without_the_trunk(tmp_path):
    with pytest.raises(Unavailable, match=f"LPIPS AlexNet trunk unavailable \\(put alexnet-owt-7be5be79.pth at {tmp_path}"):
        LPIPS(MetricContext(device=CPU, weights=WeightStore(tmp_path)))


def test_settings_and_minimum_size(metric):
    assert metric.settings == "lpips-alex-v0.1"
    with pytest.raises(ValueError, match="at least 31 pixels"):
        metric.update(torch.rand(1, 3, 30, 64), torch.rand(1, 3, 30, 64))


def test_bench_score_equals_lpips_package_and_scikit_image(run_cli, reference, tmp_path, shared_weights_dir):
    """`bench score` on PNG folders: PSNR/SSIM equal scikit-image and LPIPS the lpips package, per
    image; FID/KID are unavailable here (no Inception weights) and everything else is still scored."""
    import json

    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    pred_dir, target_dir = tmp_path / "pred", tmp_path / "target"
    pred_dir.mkdir(), target_dir.mkdir()
    pairs = {}
    for k, (h, w) in enumerate([(48, 48)] * 3 + [(40, 56)] * 2):  # two sizes: two batch groups
        target = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        pred = np.clip(target + rng.normal(0, 30, size=target.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pred).save(pred_dir / f"img{k}.png")
        Image.fromarray(target).save(target_dir / f"img{k}.png")
        pairs[f"img{k}"] = (pred, target)

    code, out, _ = run_cli("score", "--pred", pred_dir, "--target", target_dir, "--weights-dir", shared_weights_dir,
                           "--metrics", "psnr,ssim,lpips,fid,kid,colourfulness,delta_colourfulness",
                           "--device", "cpu", "--json")
    assert code == 0
    result = json.loads(out)
    names = result["per_image"]["names"]
    assert sorted(names) == sorted(pairs) and result["n_images"] == 5

    expected = {"psnr": [], "ssim": [], "lpips": []}
    for name in names:
        pred, target = (a.astype(np.float64) / 255 for a in pairs[name])
        expected["psnr"].append(peak_signal_noise_ratio(target, pred, data_range=1))
        expected["ssim"].append(structural_similarity(target, pred, gaussian_weights=True, sigma=1.5,
                                                      use_sample_covariance=False, data_range=1, channel_axis=-1))
        with torch.no_grad():
            expected["lpips"].append(reference(lpips.im2tensor(pairs[name][0]), lpips.im2tensor(pairs[name][1])).item())
    np.testing.assert_allclose(result["per_image"]["psnr"], expected["psnr"], atol=1e-4)
    np.testing.assert_allclose(result["per_image"]["ssim"], expected["ssim"], atol=1e-4)
    np.testing.assert_allclose(result["per_image"]["lpips"], expected["lpips"], atol=1e-5)
    for name in ("psnr", "ssim", "lpips"):
        assert result["metrics"][name] == pytest.approx(np.mean(expected[name]), abs=1e-5)

    details = result["metric_details"]
    assert details["lpips"]["settings"] == "lpips-alex-v0.1"
    for name in ("fid", "kid"):
        assert details[name]["status"] == "unavailable" and result["metrics"][name] is None
        assert "put pt_inception-2015-12-05-6726825d.pth at" in details[name]["reason"]
    assert details["colourfulness"]["status"] == "ok" and details["delta_colourfulness"]["status"] == "ok"
    assert len(result["per_image"]["delta_colourfulness"]) == 5
