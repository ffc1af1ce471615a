"""PSNR and SSIM, per image, batched on the device.

Both equal scikit-image's ``peak_signal_noise_ratio(data_range=1)`` and
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)`` (Wang et al. 2004 settings): an 11x11 Gaussian window
(sigma 1.5, truncated at 3.5 sigma), K1=0.01, K2=0.03, the mean taken over the pixels whose window
lies inside the image, then over channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.api import Metric, hookimpl

SIGMA = 1.5
RADIUS = int(3.5 * SIGMA + 0.5)  # scipy.ndimage's truncate=3.5 -> 11x11
K1, K2 = 0.01, 0.03


class PSNR(Metric):
    name = "psnr"
    description = "Peak signal-to-noise ratio (dB) of the RGB image, data range 1"
    higher_is_better = True

    @property
    def settings(self) -> str:
        return "psnr-rgb-range1"

    def update(self, pred, target):
        mse = (pred.double() - target.double()).pow(2).flatten(1).mean(1)
        return (10 * torch.log10(1.0 / mse)).float()


def gaussian_window(device, dtype=torch.float64) -> torch.Tensor:
    x = torch.arange(-RADIUS, RADIUS + 1, device=device, dtype=dtype)
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    return g / g.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) images in [0, 1]."""
    x, y = pred.double(), target.double()
    channels = x.shape[1]
    g = gaussian_window(x.device)
    # Separable Gaussian filter, 'valid' region only: scikit-image crops the border where the
    # window would reach outside the image, so padding never matters.
    kh = g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    kw = g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kh, groups=channels), kw, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = K1**2, K2**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(2, 3)).mean(dim=1).float()


class SSIM(Metric):
    name = "ssim"
    description = "Structural similarity (Wang et al.: Gaussian 11x11, sigma 1.5), RGB, per channel"
    higher_is_better = True

    @property
    def settings(self) -> str:
        return "ssim-gaussian11-sigma1.5-rgb"

    def update(self, pred, target):
        if min(pred.shape[-2:]) < 2 * RADIUS + 1:
            raise ValueError(f"SSIM needs images of at least {2 * RADIUS + 1} pixels per side")
        return ssim(pred, target)


@hookimpl
def register_metrics(register):
    register(PSNR)
    register(SSIM)
