"""PSNR and SSIM, per image, batched on the device.

Both equal scikit-image's ``peak_signal_noise_ratio(data_range=1)`` and
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)`` (Wang et al. 2004 settings): an 11x11 Gaussian window
(sigma 1.5, truncated at 3.5 sigma), K1=0.01, K2=0.03, the mean taken over the pixels whose window
lies inside the image, then over channels.
"""

from __future__ import annotations

import torch

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


def blur_matrix(n: int, device, dtype=torch.float64) -> torch.Tensor:
    """(n - 2R, n) banded matrix: the 'valid' part of a 1-D Gaussian filter as a matrix product.

    scikit-image crops the border where the window would reach outside the image, so only the
    valid region is needed and padding never matters. A matrix product is ~3x faster on the CPU
    than a grouped convolution with an 11-tap kernel.
    """
    g = gaussian_window(device, dtype)
    rows = torch.arange(n - 2 * RADIUS, device=device)
    matrix = torch.zeros(n - 2 * RADIUS, n, device=device, dtype=dtype)
    for tap in range(2 * RADIUS + 1):
        matrix[rows, rows + tap] = g[tap]
    return matrix


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) images in [0, 1]."""
    x, y = pred.double(), target.double()
    rows = blur_matrix(x.shape[-2], x.device)
    cols = blur_matrix(x.shape[-1], x.device).T
    # Blur the five moments at once: (5, N, C, H, W) -> (5, N, C, H - 2R, W - 2R).
    mu_x, mu_y, xx, yy, xy = rows @ torch.stack([x, y, x * x, y * y, x * y]) @ cols
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
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
