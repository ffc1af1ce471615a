"""Dataset split -> decoded once into a cached uint8 tensor -> batches on the training device.

Decoding (PIL) happens once per dataset, split and size, in threads, with a progress bar; the
result is cached on disk. Training then draws batches from that tensor on the training device,
where cropping, flipping and the Lab conversion happen, so the GPU never waits on PIL.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs
import torch
from PIL import Image, ImageOps

from bench.color import rgb_to_normalized_lab, uint8_to_float
from bench.dataset import Dataset, ImageRef
from bench.errors import BenchError
from bench.method import Batch
from bench.progress import progress_bar

ENV_DATA = "COLORBENCH_DATA"
ENV_CACHE = "COLORBENCH_CACHE"
PREPROCESS_VERSION = 1
# Mean absolute difference between colour channels (0-255) below which an image counts as gray.
GRAY_THRESHOLD = 2.0


def data_root(explicit: str | Path | None = None) -> Path:
    root = explicit or os.environ.get(ENV_DATA) or Path(platformdirs.user_cache_dir("colorbench")) / "data"
    return Path(root).expanduser()


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("colorbench")).expanduser()


def train_load_size(size: int) -> int:
    """Training images are stored slightly larger and randomly cropped (pix2pix: 286 -> 256)."""
    return size + size // 8


@dataclass
class ImageSet:
    """A decoded split: uint8 (N, 3, S, S) on the CPU, names, and what was dropped."""

    images: torch.Tensor
    names: list[str]
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]


def is_grayscale(rgb: np.ndarray) -> bool:
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return float(np.abs(r - g).mean() + np.abs(g - b).mean()) / 2 < GRAY_THRESHOLD


# Band names of single-channel modes (L, LA, 1, I, I;16*, F): such images hold no colour at all.
_GRAY_BANDS = {"L", "A", "1", "I", "F"}


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (P, CMYK, 16-bit RGB, ...) as RGB; transparent pixels become white, not black."""
    if "A" in image.getbands() or "transparency" in image.info:
        image = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    return image.convert("RGB")


def decode(ref: ImageRef, size: int) -> np.ndarray | str:
    """Decoded (S, S, 3) uint8 image, or the reason it is dropped ("unreadable" / "grayscale")."""
    try:
        with ref.open() as image:
            if set(image.getbands()) <= _GRAY_BANDS:
                return "grayscale"
            image.draft("RGB", (size, size))  # JPEG: let libjpeg decode at a reduced scale
            image = to_rgb(ImageOps.exif_transpose(image))
            image = ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
            array = np.asarray(image, dtype=np.uint8)
    except Exception:  # corrupt, truncated, too large (DecompressionBombError) or not an image: skip
        return "unreadable"
    return "grayscale" if is_grayscale(array) else array


def decode_all(refs, size: int, label: str) -> ImageSet:
    arrays, names, dropped = [], [], {}
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool, progress_bar(f"decode {label}", total=len(refs)) as advance:
        for ref, result in zip(refs, pool.map(lambda r: decode(r, size), refs)):
            advance()
            if isinstance(result, str):
                dropped[result] = dropped.get(result, 0) + 1
            else:
                arrays.append(result)
                names.append(ref.name)
    if not arrays:
        raise BenchError(f"{label}: no usable colour images ({_describe(dropped) or 'the split is empty'})")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, names, dropped)


def _describe(dropped: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(dropped.items()))


def load_split(dataset: Dataset, split: str, size: int, *, log=None, use_cache: bool = True) -> ImageSet:
    """The decoded split at ``size``, from the cache when present."""
    path = cache_dir() / "decoded" / _safe(dataset.cache_key()) / f"{split}-{size}-v{PREPROCESS_VERSION}.pt"
    if use_cache and path.is_file():
        try:
            stored = torch.load(path, weights_only=True)
            return ImageSet(stored["images"], stored["names"], stored["dropped"])
        except Exception:
            pass  # a broken cache entry is rebuilt below
    refs = list(dataset.images(split))
    if not refs:
        raise BenchError(f"dataset {dataset.name!r} has no images in its {split} split")
    image_set = decode_all(refs, size, f"{dataset.name}/{split}")
    if image_set.dropped and log:
        log(f"{dataset.name}/{split}: skipped {_describe(image_set.dropped)} of {len(refs)} images")
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"images": image_set.images, "names": image_set.names, "dropped": image_set.dropped}, tmp)
        tmp.replace(path)
    return image_set


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in key)[:150]


class BatchSampler:
    """Random training batches drawn on the device: random crop + horizontal flip, then Lab.

    All randomness comes from a CPU generator seeded by the run's seed, so the batches are the
    same on every device.
    """

    def __init__(self, images: torch.Tensor, *, size: int, batch_size: int, seed: int, device,
                 augment: bool = True, unpaired: bool = False):
        self.images = images.to(device)
        self.size = size
        self.batch_size = batch_size
        self.augment = augment
        self.unpaired = unpaired
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        if self.images.shape[-1] < size or self.images.shape[-2] < size:
            raise BenchError(f"stored images {tuple(self.images.shape[-2:])} are smaller than the crop {size}")

    def _draw(self) -> torch.Tensor:
        n = self.images.shape[0]
        index = torch.randint(n, (self.batch_size,), generator=self.generator)
        height, width = self.images.shape[-2:]
        if self.augment:
            top = torch.randint(height - self.size + 1, (self.batch_size,), generator=self.generator)
            left = torch.randint(width - self.size + 1, (self.batch_size,), generator=self.generator)
            flip = torch.rand(self.batch_size, generator=self.generator) < 0.5
        else:
            top = torch.full((self.batch_size,), (height - self.size) // 2)
            left = torch.full((self.batch_size,), (width - self.size) // 2)
            flip = torch.zeros(self.batch_size, dtype=torch.bool)
        offsets = torch.arange(self.size)
        rows = (top[:, None] + offsets)[:, None, :, None]
        cols = left[:, None] + offsets
        cols = torch.where(flip[:, None], cols.flip(-1), cols)[:, None, None, :]
        channels = torch.arange(3)[None, :, None, None]
        to = lambda t: t.to(self.device, non_blocking=True)  # noqa: E731
        crops = self.images[to(index)[:, None, None, None], to(channels), to(rows), to(cols)]
        return uint8_to_float(crops)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def next(self) -> Batch:
        L, ab = rgb_to_normalized_lab(self._draw())
        if not self.unpaired:
            return Batch(L, ab)
        color_L, color_ab = rgb_to_normalized_lab(self._draw())
        return Batch(L, ab, color_L, color_ab)
