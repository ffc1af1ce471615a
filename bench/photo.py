"""Colorizing a user's own photos (``bench colorize``, see ``bench.colorize``).

A photo is colorized at its own size with bounded memory: the network runs once at its trained
size on a reduced copy, and the full-resolution recombination (the photo's own L + the upsampled
ab) runs in row tiles that are written into the 8-bit output, so no full-size float copy exists.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bench.color import float_to_uint8, normalized_lab_to_rgb, rgb_to_normalized_lab
from bench.data import GRAY_BANDS
from bench.errors import BenchError
from bench.evaluation.test_time import colorize_seeded
from bench.method import Method

# Rows per tile are chosen so a tile holds about this many pixels: the Lab maths on a tile needs a
# few float32 copies of it (tens of MB), whatever the photo's size.
TILE_PIXELS = 1 << 19
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that undoes it (as PIL's ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_DEEP_GRAY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}  # 16-bit (or 32-bit integer) gray


@dataclass
class Photo:
    """A decoded, upright photo: 8-bit ``L``/``RGB`` or 16-bit gray ``I;16`` pixels, and its alpha."""

    pixels: Image.Image
    alpha: Image.Image | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.size

    def _to_rgb(self, image: Image.Image) -> torch.Tensor:
        """PIL pixels -> float RGB (1, 3, H, W) in [0, 1]; 16-bit values keep their precision."""
        array = np.asarray(image)
        scale = 65535.0 if array.dtype == np.uint16 else 255.0
        values = torch.from_numpy(array.astype(np.float32)) / scale
        if values.ndim == 2:  # gray: R = G = B
            return values[None, None].expand(1, 3, *values.shape)
        return values.permute(2, 0, 1)[None]

    def rows(self, top: int, bottom: int) -> torch.Tensor:
        """Full-resolution float RGB of rows [top, bottom)."""
        return self._to_rgb(self.pixels.crop((0, top, self.size[0], bottom)))

    def reduced(self, size: int) -> torch.Tensor:
        """The whole photo as float RGB (1, 3, size, size), as the network sees it at its trained size."""
        # reducing_gap: a fast box reduction first (PIL has none for 16-bit), then bicubic as training uses.
        gap = None if self.pixels.mode == "I;16" else 3.0
        return self._to_rgb(self.pixels.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=gap))


@contextmanager
def _pixel_guard_off():
    """PIL's decompression-bomb guard off: the caller checks the size itself (``--max-pixels``)."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def read_photo(path: Path, *, max_pixels: int) -> Photo:
    """Decode a photo of any common mode (palette, CMYK, RGBA, 1-bit, 16-bit gray, ...), upright.

    Raises :class:`BenchError` naming the file when it cannot be read or exceeds ``max_pixels``.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise BenchError(f"{path}: empty file (0 bytes), not an image")
    try:
        with _pixel_guard_off(), Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise BenchError(f"{width}×{height} is {width * height / 1e6:.1f} megapixels, more than "
                                 f"--max-pixels {max_pixels} allows (raise it to colorize this photo)")
            image.load()
            return _photo(image)
    except BenchError as error:
        raise BenchError(f"{path}: {error}") from None
    except FileNotFoundError:
        raise BenchError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BenchError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise BenchError(f"{path}: not a readable image (no image format Pillow knows)") from None
    except MemoryError:
        raise BenchError(f"{path}: not enough memory to decode it") from None
    except Exception as error:  # truncated or corrupt data, unsupported modes
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BenchError(f"{path}: not a readable image ({detail})") from None


def _photo(image: Image.Image) -> Photo:
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG)
    except Exception:  # damaged EXIF: the pixels are still fine, keep them as stored
        orientation = None
    alpha = None
    if image.mode in _DEEP_GRAY_MODES:
        pixels = _as_uint16_gray(image)
    elif image.mode == "F":
        raise BenchError("32-bit floating-point pixels have no defined range; convert it to an 8- or 16-bit image")
    else:
        gray = set(image.getbands()) <= GRAY_BANDS  # 16-bit and float modes are handled above
        if "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info:
            image = image.convert("LA" if gray else "RGBA")
            alpha = image.getchannel("A")
        target = "L" if gray else "RGB"
        pixels = image if image.mode == target else image.convert(target)
    if orientation in _UPRIGHT:
        pixels = pixels.transpose(_UPRIGHT[orientation])
        alpha = alpha.transpose(_UPRIGHT[orientation]) if alpha is not None else None
    return Photo(pixels, alpha)


def _as_uint16_gray(image: Image.Image) -> Image.Image:
    """16-bit gray in native ``I;16``; PIL's own converters clip such values to 8 bits."""
    if image.mode == "I;16":
        return image
    array = np.asarray(image)
    if image.mode == "I":  # 32-bit integers (16-bit PNGs in older Pillows): the 16-bit range
        array = np.clip(array, 0, 65535)
    return Image.fromarray(array.astype(np.uint16))


def _source_index(out_length: int, in_length: int, positions: torch.Tensor):
    """Bilinear source rows/columns and weights, as ``F.interpolate(align_corners=False)``."""
    source = ((positions.double() + 0.5) * (in_length / out_length) - 0.5).clamp(min=0)
    low = source.floor().long().clamp(max=in_length - 1)
    high = (low + 1).clamp(max=in_length - 1)
    return low, high, (source - low).float()


def upsample_rows(ab: torch.Tensor, size: tuple[int, int], top: int, bottom: int, columns=None) -> torch.Tensor:
    """Rows [top, bottom) of ``F.interpolate(ab, size, mode="bilinear")`` without the rest of the image."""
    height, width = size
    low, high, weight = _source_index(height, ab.shape[-2], torch.arange(top, bottom))
    rows = ab[:, :, low] * (1 - weight)[:, None] + ab[:, :, high] * weight[:, None]
    low, high, weight = columns or _source_index(width, ab.shape[-1], torch.arange(width))
    return rows[..., low] * (1 - weight) + rows[..., high] * weight


def colorize_photo(method: Method, photo: Photo, *, tile_pixels: int = TILE_PIXELS, seed: int = 0) -> Image.Image:
    """Colorize at the photo's own size: 8-bit RGB (RGBA when the photo has alpha). A method random at
    test time draws from ``seed`` (the run's), so the same photo gives the same output every time.

    The network runs once at its trained size; its ab is upsampled (bilinear) and recombined with
    the photo's full-resolution L tile by tile, straight into the output image.
    """
    method.eval_mode()
    width, height = photo.size
    with torch.no_grad():
        L_small, _ = rgb_to_normalized_lab(photo.reduced(method.size))
        ab_small = colorize_seeded(method, L_small.to(method.device), run_seed=seed, first_index=0).float().cpu()
        output = Image.new("RGB", (width, height))
        columns = _source_index(width, ab_small.shape[-1], torch.arange(width))
        step = max(1, tile_pixels // width)
        for top in range(0, height, step):
            bottom = min(height, top + step)
            L, _ = rgb_to_normalized_lab(photo.rows(top, bottom))
            ab = upsample_rows(ab_small, (height, width), top, bottom, columns)
            tile = float_to_uint8(normalized_lab_to_rgb(L, ab))[0].permute(1, 2, 0)
            output.paste(Image.fromarray(np.ascontiguousarray(tile.numpy())), (0, top))
    if photo.alpha is not None:
        output.putalpha(photo.alpha)
    return output
