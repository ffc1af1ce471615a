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


@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (2, 3, 11, 40), (3, 3, 64, 48)])
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


def test_identical_images():
    x = torch.rand(2, 3, 16, 16)
    ctx = MetricContext(device=torch.device("cpu"))
    assert torch.isinf(PSNR(ctx).update(x, x)).all()
    torch.testing.assert_close(SSIM(ctx).update(x, x), torch.ones(2))


def test_ssim_rejects_images_smaller_than_its_window():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="at least 11"):
        SSIM(MetricContext(device=torch.device("cpu"))).update(x, x)
