"""PSNR and SSIM equal scikit-image's reference implementations."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.metric import MetricContext
from bench.metrics.fidelity import PSNR, SSIM


def reference(pred, target):
    psnr, ssim = [], []
    for p, t in zip(pred.permute(0, 2, 3, 1).double().numpy(), target.permute(0, 2, 3, 1).double().numpy()):
        psnr.append(peak_signal_noise_ratio(t, p, data_range=1))
        ssim.append(structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=1, channel_axis=-1))
    return np.array(psnr), np.array(ssim)


@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (2, 3, 11, 40), (3, 3, 64, 48), (2, 3, 64, 64), (2, 3, 256, 256)])
def test_psnr_ssim_equal_skimage(shape):
    g = torch.Generator().manual_seed(sum(shape))
    target = torch.rand(shape, generator=g)
    pred = (target + 0.15 * torch.randn(shape, generator=g)).clamp(0, 1)
    # Quantised like the images the harness scores (8-bit outputs).
    pred, target = (pred * 255).round() / 255, (target * 255).round() / 255
    ctx = MetricContext(device=torch.device("cpu"))
    ours_psnr = PSNR(ctx).update(pred, target).numpy()
    ours_ssim = SSIM(ctx).update(pred, target).numpy()
    ref_psnr, ref_ssim = reference(pred, target)
    np.testing.assert_allclose(ours_psnr, ref_psnr, atol=1e-4)
    np.testing.assert_allclose(ours_ssim, ref_ssim, atol=1e-4)


def test_structured_images_not_just_noise():
    from skimage import data

    target = torch.from_numpy(data.astronaut()[100:228, 150:278]).permute(2, 0, 1)[None].float() / 255
    pred = target.clone()
    pred[:, 0] = pred[:, 0] * 0.8 + 0.1  # a colour cast on red
    ctx = MetricContext(device=torch.device("cpu"))
    ref_psnr, ref_ssim = reference(pred, target)
    assert abs(PSNR(ctx).update(pred, target).item() - ref_psnr[0]) < 1e-4
    assert abs(SSIM(ctx).update(pred, target).item() - ref_ssim[0]) < 1e-4


def test_ssim_where_float32_cancellation_is_worst():
    """Near-flat images near white: E[x²] - E[x]² cancels most here; still within 1e-4 of float64 skimage."""
    g = torch.Generator().manual_seed(3)
    flat = lambda level: torch.full((2, 3, 64, 64), level) - (torch.rand(2, 3, 64, 64, generator=g) < 0.05) / 255  # noqa: E731
    pred, target = flat(254 / 255), flat(1.0)
    ours = SSIM(MetricContext(device=torch.device("cpu"))).update(pred, target).numpy()
    np.testing.assert_allclose(ours, reference(pred, target)[1], atol=1e-4)


@pytest.mark.parametrize("size", [64, 256])
def test_ssim_differences_only_in_the_border(size):
    """pred differs from target only in the outer 5-pixel ring, where the window leaves the image:
    scikit-image crops that ring from the SSIM map (its padding never counts), yet the ring enters the
    windows of the pixels just inside. Any other crop or padding gives other numbers."""
    g = torch.Generator().manual_seed(size)
    target = torch.rand(2, 3, size, size, generator=g)
    ring = torch.ones(size, size, dtype=torch.bool)
    ring[5:-5, 5:-5] = False
    pred = torch.where(ring, torch.rand(2, 3, size, size, generator=g), target)
    pred, target = (pred * 255).round() / 255, (target * 255).round() / 255
    ours = SSIM(MetricContext(device=torch.device("cpu"))).update(pred, target).numpy()
    expected = reference(pred, target)[1]
    assert (expected < 1 - 1e-3).all()  # the ring counts through the windows of the pixels inside it
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_identical_images():
    x = torch.rand(2, 3, 16, 16)
    ctx = MetricContext(device=torch.device("cpu"))
    assert torch.isinf(PSNR(ctx).update(x, x)).all()
    torch.testing.assert_close(SSIM(ctx).update(x, x), torch.ones(2, dtype=torch.float64))


def test_ssim_rejects_images_smaller_than_its_window():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="at least 11"):
        SSIM(MetricContext(device=torch.device("cpu"))).update(x, x)
