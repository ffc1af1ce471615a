"""Colorizing: the test split during a run, and a user's own photos with ``bench colorize``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from bench.color import (
    float_to_uint8,
    lab_to_rgb,
    normalized_lab_to_rgb,
    rgb_to_lab,
    rgb_to_normalized_lab,
    uint8_to_float,
)
from bench.errors import BenchError
from bench.method import Method
from bench.progress import progress_bar


def colorize_uint8(method: Method, images: torch.Tensor, *, batch_size: int, label: str = "colorize"):
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


def gray_uint8(images: torch.Tensor) -> torch.Tensor:
    """The gray input a method sees (L with zero ab), as uint8 RGB."""
    lab = rgb_to_lab(uint8_to_float(images))
    lab[:, 1:] = 0
    return float_to_uint8(lab_to_rgb(lab))


def save_png(image_chw_uint8: torch.Tensor, path: Path) -> None:
    Image.fromarray(image_chw_uint8.permute(1, 2, 0).cpu().numpy()).save(path)


def sample_indices(count: int, total: int) -> list[int]:
    """Evenly spread test images: the same ones for every method of a dataset."""
    count = min(count, total)
    return [round(i * (total - 1) / max(1, count - 1)) for i in range(count)] if count > 1 else [0][:count]


def open_photo(path: Path) -> np.ndarray:
    """A user's photo as uint8 RGB (H, W, 3); grayscale photos are fine."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            return np.array(image, dtype=np.uint8)  # a writable copy
    except FileNotFoundError:
        raise BenchError(f"{path}: no such file") from None
    except Exception as error:
        raise BenchError(f"{path}: not a readable image ({error})") from None


def colorize_photo(method: Method, rgb: np.ndarray) -> np.ndarray:
    """Colorize at the photo's own size: the network runs at its trained size on L, the predicted ab
    is upsampled (bilinear) and recombined with the full-resolution L."""
    method.eval_mode()
    full = uint8_to_float(torch.from_numpy(rgb).permute(2, 0, 1)[None]).to(method.device)
    L_full, _ = rgb_to_normalized_lab(full)
    L_small = F.interpolate(L_full, size=(method.size, method.size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        ab_small = method.colorize(L_small)
    ab = F.interpolate(ab_small, size=L_full.shape[-2:], mode="bilinear", align_corners=False)
    out = float_to_uint8(normalized_lab_to_rgb(L_full, ab))
    return out[0].permute(1, 2, 0).cpu().numpy()

