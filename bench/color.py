"""sRGB (D65) <-> CIE Lab in torch, and the one normalisation the whole suite uses.

Batched (N, 3, H, W) tensors on any device, differentiable, matching scikit-image's
``rgb2lab``/``lab2rgb`` (same constants, same piecewise branches, same clipping).

Normalisation: L in [0, 100] -> L/50 - 1 in [-1, 1]; ab -> ab/110 (about [-1, 1]).
Methods see only normalised tensors; metrics and files see RGB.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

L_SCALE = 50.0
AB_SCALE = 110.0

# scikit-image's matrix (sRGB primaries, D65) and D65 2-degree reference white.
_XYZ_FROM_RGB = np.array([
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
])
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
# The white-point scaling folded into the matrices, and the inverse taken once, in float64:
# linear RGB -> XYZ / white, and XYZ / white -> linear RGB.
_XYZN_FROM_RGB = _XYZ_FROM_RGB / _WHITE_D65[:, None]
_RGB_FROM_XYZN = np.linalg.inv(_XYZ_FROM_RGB) * _WHITE_D65[None, :]


@lru_cache(maxsize=None)
def _constant(name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A matrix above as a tensor, built once per (device, dtype) rather than on every call."""
    matrix = {"xyzn_from_rgb": _XYZN_FROM_RGB, "rgb_from_xyzn": _RGB_FROM_XYZN}[name]
    # Built as an ordinary tensor even when first asked for under inference_mode, so a later
    # differentiable call can still save it for backward.
    with torch.inference_mode(False):
        return torch.tensor(matrix, dtype=dtype, device=device)


def _apply(name: str, x: torch.Tensor) -> torch.Tensor:
    """The 3x3 matrix ``name`` applied to the channels of (N, 3, H, W) ``x``."""
    return torch.einsum("ij,njhw->nihw", _constant(name, x.device, x.dtype), x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] -> Lab (L in [0, 100])."""
    # The clamps keep pow() away from its singular/negative region so gradients stay finite;
    # torch.where then picks the branch scikit-image uses.
    linear = torch.where(
        rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92
    )
    xyz = _apply("xyzn_from_rgb", linear)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) Lab -> sRGB clipped to [0, 1]."""
    L, a, b = lab[:, 0:1], lab[:, 1:2], lab[:, 2:3]
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)  # scikit-image clips negative z to 0
    f = torch.cat([fx, fy, fz], dim=1)
    xyz = torch.where(f > 0.2068966, f.clamp(min=0.2068966) ** 3, (f - 16.0 / 116.0) / 7.787)
    linear = _apply("rgb_from_xyzn", xyz)
    srgb = torch.where(
        linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055, linear * 12.92
    )
    return srgb.clamp(0.0, 1.0)


def normalize_lab(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lab -> (L, ab) in the suite's normalisation."""
    return lab[:, 0:1] / L_SCALE - 1.0, lab[:, 1:3] / AB_SCALE


def denormalize_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised (L, ab) -> Lab."""
    return torch.cat([(L + 1.0) * L_SCALE, ab * AB_SCALE], dim=1)


def rgb_to_normalized_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return normalize_lab(rgb_to_lab(rgb))


def normalized_lab_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    return lab_to_rgb(denormalize_lab(L, ab))


def uint8_to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0


def float_to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255.0).round().to(torch.uint8)
