"""FID/KID and fd-alex/kd-alex: the maths against pytorch-fid and direct numpy, the feature paths against their references.

The FID Inception weights are not available offline, so the feature-path tests build pytorch-fid's
FID InceptionV3 with RANDOM weights. That is for these tests only: the metrics themselves refuse
to run without the real weights (see test_missing_fid_weights_make_fid_and_kid_unavailable).
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pytorch_fid import inception as pf_inception
from pytorch_fid.fid_score import calculate_frechet_distance, get_activations

from bench.errors import BenchError
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.metric import MetricContext
from bench.metrics import distribution as dist
from bench.metrics.features import TargetFingerprint
from bench.metrics.perceptual import AlexTrunk
from bench.weights import WeightStore

CPU = torch.device("cpu")
# pytorch-fid calls sqrtm(disp=False), deprecated in recent SciPy (the metric itself silences this).
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


# -- maths -----------------------------------------------------------------------------------
def numpy_frechet(x, y):
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2), by eigendecompositions."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


@pytest.mark.parametrize("n, d", [(200, 16), (12, 16)])  # full-rank and rank-deficient covariances
def test_frechet_distance_equals_pytorch_fid_and_numpy(n, d):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    y = rng.normal(size=(n + 5, d)) * 1.5 + 0.3
    ours, _ = dist.frechet_distance(x, y)
    mu1, s1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, s2 = y.mean(0), np.cov(y, rowvar=False)
    assert ours == pytest.approx(calculate_frechet_distance(mu1, s1, mu2, s2), rel=1e-12)
    assert ours == pytest.approx(numpy_frechet(x, y), rel=1e-6)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    # Independent coordinates: FD = ||mu1 - mu2||^2 + sum (sigma1 - sigma2)^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum()
    assert calculate_frechet_distance(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2)) == pytest.approx(expected)


def test_gaussian_statistics_are_pytorch_fids():
    x = np.random.default_rng(0).normal(size=(30, 5))
    mu, sigma = dist.gaussian_statistics(x)
    np.testing.assert_array_equal(mu, np.mean(x, axis=0))
    np.testing.assert_allclose(sigma, (x - mu).T @ (x - mu) / (len(x) - 1))  # sample covariance


def loop_mmd2(x, y):
    """Unbiased MMD^2 written out pair by pair (Gretton et al. 2012, eq. 3) with k = (x.y/d + 1)^3."""
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_polynomial_mmd_equals_pairwise_definition():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(9, 6)), rng.normal(size=(9, 6)) + 0.4
    assert dist.polynomial_mmd2(x, y) == pytest.approx(loop_mmd2(x, y), rel=1e-10)


def test_kid_is_the_mean_and_std_over_documented_subsets():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(26, 4)) + 0.5
    result = dist.kernel_inception_distance(x, y, subsets=7, seed=3)
    assert result["subset_size"] == 13  # min(1000, 26 // 2)
    draws = np.random.default_rng(3)
    estimates = []
    for _ in range(7):
        ix, iy = draws.choice(30, 13, replace=False), draws.choice(26, 13, replace=False)
        estimates.append(loop_mmd2(x[ix], y[iy]))
    assert result["value"] == pytest.approx(np.mean(estimates), rel=1e-10)
    assert result["std"] == pytest.approx(np.std(estimates), rel=1e-8)
    assert result["std"] > 0


def test_kid_separates_distributions_and_is_unbiased_near_zero():
    rng = np.random.default_rng(4)
    same = dist.kernel_inception_distance(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)))
    shifted = dist.kernel_inception_distance(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 1.0)
    assert abs(same["value"]) < 3 * same["std"] + 1e-3  # unbiased: can be negative, centred on 0
    assert shifted["value"] > 10 * max(same["std"], abs(same["value"]))
    assert dist.kid_subset_size(5000) == 1000 and dist.kid_subset_size(340) == 170


def test_kid_needs_a_few_images():
    with pytest.raises(ValueError, match="at least 4"):
        dist.kernel_inception_distance(np.zeros((3, 4)), np.zeros((3, 4)))


# -- the Inception feature path, with RANDOM weights (test only) -----------------------------
@pytest.fixture(scope="module")
def random_fid_state():
    """A state dict for pytorch-fid's FID InceptionV3 -- RANDOM (He-normal convs), NOT the FID weights."""
    captured = {}

    def capture(model, state_dict, *args, **kwargs):
        generator = torch.Generator().manual_seed(0)
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):  # variance-preserving, so features differ per image
                std = (2.0 / module.weight[0].numel()) ** 0.5
                module.weight.data = torch.randn(module.weight.shape, generator=generator) * std
        captured["state"] = {k: v.clone() for k, v in model.state_dict().items()}

    with mock.patch.object(pf_inception, "load_state_dict_from_url", lambda *a, **k: {}), \
         mock.patch.object(torchvision.models.Inception3, "load_state_dict", capture):
        pf_inception.InceptionV3([3])
    return captured["state"]


def photo_crops(count, size, seed):
    """Varied real-photo crops (uint8, N x H x W x 3) with a random colour change each."""
    from skimage import data

    photo = data.astronaut()
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        top, left = rng.integers(0, photo.shape[0] - size[0]), rng.integers(0, photo.shape[1] - size[1])
        crop = photo[top : top + size[0], left : left + size[1]].astype(np.float64)
        crops.append(np.clip(crop * rng.uniform(0.6, 1.2, size=3), 0, 255).round().astype(np.uint8))
    return np.stack(crops)


def to_batch(arrays):
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 255  # channels-last in memory, like `bench score`


def test_batched_features_equal_pytorch_fid_get_activations(random_fid_state, tmp_path):
    model = dist.build_fid_inception(random_fid_state, 2048)
    images = photo_crops(3, (40, 56), seed=0)  # not 299x299, not square: pytorch-fid's resize is used
    files = []
    for k, image in enumerate(images):
        files.append(tmp_path / f"{k}.png")
        Image.fromarray(image).save(files[-1])
    theirs = get_activations(files, model, batch_size=3, dims=2048, device="cpu", num_workers=0)
    with torch.no_grad():
        ours = dist.inception_features(model, to_batch(images)).numpy()
    assert ours.shape == (3, 2048) and ours.std(axis=0).mean() > 1e-4  # random, but not degenerate
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


class CountingModel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x):
        self.images += x.shape[0]
        return self.inner(x)


@pytest.fixture
def random_inception_64(random_fid_state, monkeypatch):
    """The metrics' Inception replaced by the RANDOM-weight one (64-d block: fast Frechet maths)."""
    model = CountingModel(dist.build_fid_inception(random_fid_state, 64))
    monkeypatch.setattr(dist, "fid_inception", lambda context, dims: model)
    return model


def run_pass(context, preds, targets, batch_size=4):
    context.shared.clear()  # what build_metrics does at the start of a pass
    options = dist.InceptionOptions(dims=64)
    metrics = [dist.FID(context, options), dist.KID(context, options)]
    u8 = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    batches = ((u8(preds[i : i + batch_size]), u8(targets[i : i + batch_size])) for i in range(0, len(preds), batch_size))
    return evaluate(batches, metrics, len(preds))


def test_fid_kid_one_pass_cached_reference(random_inception_64, tmp_path):
    preds, targets = photo_crops(8, (48, 48), seed=1), photo_crops(8, (48, 48), seed=2)
    context = MetricContext(device=CPU, cache_dir=tmp_path, reference_key="flowers-test-48")
    first = run_pass(context, preds, targets)
    assert random_inception_64.images == 16  # one Inception pass per image, shared by FID and KID

    with torch.no_grad():
        x = dist.inception_features(random_inception_64.inner, to_batch(preds)).double().numpy()
        y = dist.inception_features(random_inception_64.inner, to_batch(targets)).double().numpy()
    fid, kid = first["fid"], first["kid"]
    assert fid["status"] == "ok" and fid["settings"] == "fid-inception-64"
    assert fid["value"] == pytest.approx(calculate_frechet_distance(*dist.gaussian_statistics(x), *dist.gaussian_statistics(y)), rel=1e-9)
    assert fid["n"] == 8 and "rank-deficient" in fid["warning"]
    assert kid["status"] == "ok" and kid["settings"].startswith("kid-inception-64-poly3")
    assert kid["value"] == pytest.approx(dist.kernel_inception_distance(x, y)["value"], rel=1e-9)
    assert kid["subset_size"] == 4 and kid["n"] == 8

    second = run_pass(context, preds, targets)
    assert random_inception_64.images == 16 + 8  # the real side came from the cache
    assert second["fid"]["value"] == pytest.approx(fid["value"], rel=1e-12)
    assert second["kid"]["value"] == pytest.approx(kid["value"], rel=1e-12)

    other_targets = photo_crops(8, (48, 48), seed=3)  # same key, other images: the cache is refused
    third = run_pass(context, preds, other_targets)
    assert third["fid"]["status"] == "failed" and "other images" in third["fid"]["reason"]
    assert not list(tmp_path.glob("*.pt"))  # the stale entry is gone; the next pass recomputes


def test_no_reference_key_computes_both_sides(random_inception_64, tmp_path):
    preds, targets = photo_crops(4, (48, 48), seed=4), photo_crops(4, (48, 48), seed=5)
    for _ in range(2):
        result = run_pass(MetricContext(device=CPU, cache_dir=tmp_path), preds, targets)
        assert result["fid"]["status"] == "ok"
    assert random_inception_64.images == 16 and not list(tmp_path.iterdir())


def test_missing_fid_weights_make_fid_and_kid_unavailable(tmp_path):
    context = MetricContext(device=CPU, weights=WeightStore(tmp_path), cache_dir=tmp_path)
    ready, unavailable = build_metrics(["psnr", "fid", "kid"], context)
    assert [m.name for m in ready] == ["psnr"]
    for name in ("fid", "kid"):
        entry = unavailable[name]
        assert entry["status"] == "unavailable" and entry["value"] is None
        assert "FID Inception weights unavailable" in entry["reason"]
        assert f"put pt_inception-2015-12-05-6726825d.pth at {tmp_path}" in entry["reason"]


def test_dims_must_be_pytorch_fids():
    with pytest.raises(BenchError, match="2048, 768, 192, 64"):
        dist.InceptionOptions.from_dict({"dims": 100})


# -- the target fingerprint ------------------------------------------------------------------
def test_target_fingerprint_sees_every_pixel_not_the_batching():
    images = torch.randint(0, 256, (6, 3, 16, 16), generator=torch.Generator().manual_seed(0)).float() / 255

    def digest(*batches):
        fingerprint = TargetFingerprint()
        for batch in batches:
            fingerprint.update(batch)
            fingerprint.update(batch)  # a second metric passing the same batch: counted once
        return fingerprint.hexdigest()

    whole = digest(images)
    assert digest(images[:2], images[2:]) == whole  # the eval batch size may change between runs
    changed = images.clone()
    changed[4, 1, 15, 0] += 1 / 255  # one channel of one pixel, one 8-bit step
    assert digest(changed) != whole
    assert digest(images[[1, 0, 2, 3, 4, 5]]) != whole  # order counts: features are kept in order
    assert digest(images[:5]) != whole


# -- fd-alex / kd-alex: the LPIPS AlexNet trunk's pooled conv5 features ----------------------
def alex_features(weights_dir, arrays):
    trunk = AlexTrunk(MetricContext(device=CPU, weights=WeightStore(weights_dir)))
    with torch.no_grad():
        return trunk.conv5(to_batch(arrays)).double().numpy()


def run_alex_pass(context, preds, targets, batch_size=4):
    metrics, unavailable = build_metrics(["fd-alex", "kd-alex"], context)
    assert not unavailable
    u8 = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    batches = ((u8(preds[i : i + batch_size]), u8(targets[i : i + batch_size])) for i in range(0, len(preds), batch_size))
    return evaluate(batches, metrics, len(preds))


def test_fd_kd_alex_equal_direct_numpy_on_the_same_features(shared_weights_dir, tmp_path):
    preds, targets = photo_crops(12, (64, 64), seed=6), photo_crops(12, (64, 64), seed=7)
    context = MetricContext(device=CPU, weights=WeightStore(shared_weights_dir), cache_dir=tmp_path,
                            reference_key="flowers-test-64")
    first = run_alex_pass(context, preds, targets)
    x, y = alex_features(shared_weights_dir, preds), alex_features(shared_weights_dir, targets)
    assert x.shape == (12, 256) and x.std(axis=0).mean() > 1e-3

    fd, kd = first["fd-alex"], first["kd-alex"]
    assert fd["status"] == "ok" and fd["value"] == pytest.approx(numpy_frechet(x, y), rel=1e-5)
    assert fd["n"] == 12 and "rank-deficient" in fd["warning"]  # N = 12 <= 256
    draws = np.random.default_rng(dist.KID_SEED)
    estimates = []
    for _ in range(dist.KID_SUBSETS):
        ix, iy = draws.choice(12, 6, replace=False), draws.choice(12, 6, replace=False)
        estimates.append(loop_mmd2(x[ix], y[iy]))
    assert kd["status"] == "ok" and kd["subset_size"] == 6
    assert kd["value"] == pytest.approx(np.mean(estimates), rel=1e-6)
    assert kd["std"] == pytest.approx(np.std(estimates), rel=1e-5)

    # Labelled as what they are: never FID/KID.
    assert fd["settings"] == "fd-alexnet-lpips-trunk-conv5relu-avgpool256-input-lpips-scaling"
    assert kd["settings"].startswith("kd-alexnet-lpips-trunk-conv5relu-avgpool256")
    assert "not FID" in fd["description"] and "not KID" in kd["description"]

    assert len(list(tmp_path.glob("*alexnet-conv5*.pt"))) == 1  # the real side is cached ...
    second = run_alex_pass(context, preds, targets)
    assert context.shared["alexnet-conv5"].target == []  # ... and reused: no target features this pass
    assert second["fd-alex"]["value"] == pytest.approx(fd["value"], rel=1e-12)
    assert second["kd-alex"]["value"] == pytest.approx(kd["value"], rel=1e-12)


def test_fd_kd_alex_unavailable_without_the_lpips_trunk(tmp_path):
    context = MetricContext(device=CPU, weights=WeightStore(tmp_path))
    ready, unavailable = build_metrics(["psnr", "fd-alex", "kd-alex"], context)
    assert [m.name for m in ready] == ["psnr"]
    for name in ("fd-alex", "kd-alex"):
        assert unavailable[name]["status"] == "unavailable"
        assert "LPIPS AlexNet trunk unavailable" in unavailable[name]["reason"]


@pytest.mark.slow
def test_fd_alex_is_full_rank_on_the_flowers_test_split(shared_flowers_root, shared_weights_dir):
    """At the flowers test split's N = 340 the 256-d covariance has full rank: no warning, finite value."""
    from bench.data import load_split
    from bench.datasets.flowers import Flowers17

    truth = load_split(Flowers17(shared_flowers_root), "test", 64).images
    assert len(truth) == 340
    trunk = AlexTrunk(MetricContext(device=CPU, weights=WeightStore(shared_weights_dir)))
    gray = truth.float().mean(dim=1, keepdim=True).expand_as(truth)
    with torch.no_grad():
        x = trunk.conv5(gray / 255).double().numpy()
        y = trunk.conv5(truth.float() / 255).double().numpy()
    assert np.linalg.matrix_rank(np.cov(y, rowvar=False)) == 256
    result = dist.frechet_result(x, y)
    assert "warning" not in result and np.isfinite(result["value"]) and result["value"] > 0
