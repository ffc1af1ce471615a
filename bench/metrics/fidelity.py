"""PSNR and SSIM, per image, batched on the device.

Both equal scikit-image's ``peak_signal_noise_ratio(data_range=1)`` and
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)`` (Wang et al. 2004 settings): an 11x11 Gaussian window
(sigma 1.5, truncated at 3.5 sigma), K1=0.01, K2=0.03, the mean taken over the pixels whose window
lies inside the image, then over channels. SSIM blurs with the separable Gaussian (two 1-D
convolutions) in float32: within 1e-5 of scikit-image, and faster than it on the CPU.
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
        # Differences in float32, their squares summed in float64: within 1e-7 dB of all-float64,
        # at half the memory traffic.
        diff = (pred.float() - target.float()).flatten(1)
        return 10 * torch.log10(diff.shape[1] / (diff * diff).sum(dim=1, dtype=torch.float64))


def gaussian_window(device, dtype=torch.float64) -> torch.Tensor:
    x = torch.arange(-RADIUS, RADIUS + 1, device=device, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    return (g / g.sum()).to(dtype)


# Images per chunk: on the CPU a chunk's blurred moments (5 per channel) stay in the cache, which
# makes the pass ~3x faster than blurring a whole 256² batch at once; on a GPU, large chunks.
CHUNK_VALUES = {"cpu": 1 << 21}
DEVICE_CHUNK_VALUES = 1 << 27


def blur_valid(moments: torch.Tensor) -> torch.Tensor:
    """The 'valid' part of the 2-D Gaussian filter of every channel: two 1-D passes (11 taps each).

    scikit-image crops the border where the window would reach outside the image, so only the
    valid region is needed and padding never matters.
    """
    channels = moments.shape[1]
    g = gaussian_window(moments.device, moments.dtype)
    moments = F.conv2d(moments, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(moments, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)


def _ssim_chunk(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    n, c, h, w = pred.shape
    # float32, centred on 0.5: the moments' cancellation (E[x²] - E[x]²) then loses at most ~1e-5
    # of SSIM on flat images (measured against scikit-image's float64; far inside the 1e-4 promise).
    x, y = pred.float() - 0.5, target.float() - 0.5
    moments = torch.stack([x, y, x * x, y * y, x * y], dim=1).view(n, 5 * c, h, w)
    blurred = blur_valid(moments).view(n, 5, c, h - 2 * RADIUS, w - 2 * RADIUS)
    mu_x, mu_y, xx, yy, xy = blurred.unbind(1)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    mu_x, mu_y = mu_x + 0.5, mu_y + 0.5
    c1, c2 = K1**2, K2**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(2, 3), dtype=torch.float64).mean(dim=1)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (float64) of (N, C, H, W) images in [0, 1]."""
    n, c, h, w = pred.shape
    chunk = max(1, CHUNK_VALUES.get(pred.device.type, DEVICE_CHUNK_VALUES) // (5 * c * h * w))
    return torch.cat([_ssim_chunk(pred[i : i + chunk], target[i : i + chunk]) for i in range(0, n, chunk)])


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
