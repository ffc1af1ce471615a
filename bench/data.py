"""Dataset split -> decoded once into a cached uint8 tensor -> batches on the training device.

Decoding (PIL) happens once per dataset, split and size, in threads, with a progress bar; the
result is cached on disk with what it was built from, and decoded afresh when that changes.
Training then draws batches from that tensor on the training device, where cropping, flipping
and the Lab conversion happen, so the GPU never waits on PIL.

Train and test are prepared alike: every image is resized to ``train_load_size(size)`` (its
centre square); training crops ``size`` at random from that, the test set is its centre crop. The
grayscale filter looks at the image as decoded, before any resizing, so the test set holds the same
images at every size.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs
import torch
from PIL import Image, ImageChops, ImageOps, ImageStat

from bench.color import rgb_to_normalized_lab, uint8_to_float
from bench.dataset import Dataset, ImageRef
from bench.errors import BenchError
from bench.memory import check_decode
from bench.method import Batch
from bench.progress import progress_bar
from bench.store.digest import save_sealed, verify
from bench.store.atomic import clean_orphans
from bench.store.identity import safe_name

ENV_DATA = "COLORBENCH_DATA"
ENV_CACHE = "COLORBENCH_CACHE"
# Bump whenever decoded pixels change for the same source, so old cache entries are not used.
# 2: test images prepared as training crops; the gray decision taken before resizing.
PREPROCESS_VERSION = 2
# Mean absolute difference between colour channels (0-255) below which an image counts as gray.
GRAY_THRESHOLD = 2.0
# Large JPEGs are decoded by libjpeg at a reduced scale (1/2, 1/4 or 1/8) that keeps both sides at
# least this long: train_load_size(1024), so the gray decision is the same for every run size to 1024.
DRAFT_SIDE = 1152
# Sampler draws made at once on the CPU and copied to the device together.
DRAWS_PER_BLOCK = 64


def data_root(explicit: str | Path | None = None) -> Path:
    root = explicit or os.environ.get(ENV_DATA) or Path(platformdirs.user_cache_dir("colorbench")) / "data"
    return Path(root).expanduser()


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("colorbench")).expanduser()


def train_load_size(size: int) -> int:
    """Images are stored slightly larger than the crop (pix2pix: 286 -> 256): train and test alike."""
    return size + size // 8


def centre_offset(stored: int, size: int) -> int:
    """Where the centre crop of ``size`` starts in a side of ``stored`` pixels (training and test agree)."""
    return (stored - size) // 2


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The centre (size x size) of (N, 3, H, W) images, as its own contiguous tensor."""
    top, left = centre_offset(images.shape[-2], size), centre_offset(images.shape[-1], size)
    return images[..., top : top + size, left : left + size].contiguous()


@dataclass
class ImageSet:
    """A decoded split: uint8 (N, 3, S, S) on the CPU, names, and what was dropped.

    ``fingerprint`` identifies the content (source images, preparation, size): equal fingerprints,
    equal tensors.
    """

    images: torch.Tensor
    names: list[str]
    dropped: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""

    def __len__(self) -> int:
        return self.images.shape[0]


def is_grayscale(rgb: np.ndarray | Image.Image) -> bool:
    """Whether the mean of |R - G| and |G - B| (0-255) is under GRAY_THRESHOLD."""
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    r, g, b = image.split()
    # Histogram means in PIL: exact, and over ten times faster than numpy on full-size photos.
    spread = sum(ImageStat.Stat(ImageChops.difference(x, y)).mean[0] for x, y in ((r, g), (g, b))) / 2
    return spread < GRAY_THRESHOLD


# Band names of single-channel modes (L, LA, La, 1, I, I;16*, F): such images hold no colour at all.
GRAY_BANDS = {"L", "A", "a", "1", "I", "F"}


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (P, CMYK, 16-bit RGB, ...) as RGB; transparent pixels become white, not black."""
    if "A" in image.getbands() or "transparency" in image.info:
        image = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    return image.convert("RGB")


def decode(ref: ImageRef, size: int) -> np.ndarray | str:
    """Decoded (S, S, 3) uint8 image, or the reason it is dropped ("unreadable" / "grayscale").

    The gray decision is taken on the image as decoded, before it is resized to ``size``.
    """
    try:
        with ref.open() as image:
            if set(image.getbands()) <= GRAY_BANDS:
                return "grayscale"
            side = max(DRAFT_SIDE, size)
            image.draft("RGB", (side, side))  # JPEG only; a no-op below 2x the side
            image = to_rgb(ImageOps.exif_transpose(image))
            if is_grayscale(image):
                return "grayscale"
            image = ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8)
    except Exception:  # corrupt, truncated, too large (DecompressionBombError) or not an image: skip
        return "unreadable"


def decode_all(refs, size: int, label: str) -> ImageSet:
    """Every ref decoded at ``size`` (the stored size), in threads; gray and unreadable ones counted."""
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


def source_fingerprint(refs) -> str:
    """A digest of the refs' names, order and fingerprints: what a decoded split was built from."""
    digest = hashlib.sha256()
    for ref in refs:
        digest.update(json.dumps([ref.name, ref.fingerprint]).encode() + b"\n")
    return digest.hexdigest()


def prepared_size(split: str, size: int) -> int:
    """The side images of ``split`` are decoded at: test images as training images are stored."""
    return train_load_size(size) if split == "test" else size


def cache_path(dataset: Dataset, split: str, size: int) -> Path:
    return cache_dir() / "decoded" / safe_name(dataset.cache_key(), keep="-_.=", limit=150) / f"{split}-{size}-v{PREPROCESS_VERSION}.pt"


def load_split(dataset: Dataset, split: str, size: int, *, log=None, use_cache: bool = True) -> ImageSet:
    """The decoded split, (N, 3, size, size) uint8, from the cache when it matches the source.

    ``train`` is stored at ``size`` as is: the runner asks for ``train_load_size(run size)`` and the
    sampler crops. ``test`` is prepared exactly as training images are stored -- decoded at
    ``train_load_size(size)`` -- then centre-cropped to ``size``.
    """
    refs = list(dataset.images(split))
    if not refs:
        raise BenchError(f"dataset {dataset.name!r} has no images in its {split} split")
    label = f"{dataset.name}/{split}"
    expected = {"version": PREPROCESS_VERSION, "split": split, "size": size, "source": source_fingerprint(refs)}
    fingerprint = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_path(dataset, split, size)
    check_decode(label, len(refs), prepared_size(split, size))  # before the cache is read or anything decoded
    if use_cache and path.is_file():
        cached, stale = _read_entry(path, expected)
        if cached is not None:
            return ImageSet(*cached, fingerprint=fingerprint)
        if log:
            log(f"{label}: cached decode {path.name} is {stale}; decoding afresh")
    image_set = decode_all(refs, prepared_size(split, size), label)
    image_set.fingerprint = fingerprint
    if split == "test":
        image_set.images = centre_crop(image_set.images, size)
    if image_set.dropped and log:
        log(f"{label}: skipped {_describe(image_set.dropped)} of {len(refs)} images")
    if use_cache:
        _write_entry(path, expected, image_set, log)
    return image_set


def _read_entry(path: Path, expected: dict) -> tuple[tuple | None, str]:
    """(images, names, dropped) of a cache entry that matches ``expected``, else (None, why not)."""
    try:
        stored = torch.load(path, weights_only=True)
    except Exception:
        return None, "unreadable"
    if not isinstance(stored, dict):
        return None, "unreadable"
    damaged = verify(stored)
    if damaged:
        return None, f"not usable: {damaged}"
    if stored.get("version") != expected["version"]:
        return None, "from another preprocessing version"
    if stored.get("source") != expected["source"]:
        return None, "out of date (the source images changed)"
    images, names, dropped = stored.get("images"), stored.get("names"), stored.get("dropped")
    size = expected["size"]
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and isinstance(names, list)
            and images.shape == (len(names), 3, size, size) and isinstance(dropped, dict)
            and stored.get("split") == expected["split"]):
        return None, "inconsistent"
    return (images, names, dropped), ""


def _write_entry(path: Path, expected: dict, image_set: ImageSet, log) -> None:
    payload = expected | {"images": image_set.images, "names": image_set.names, "dropped": image_set.dropped}
    try:
        clean_orphans(path.parent)  # temporary files of a process that died mid-write
        save_sealed(path, payload)
    except OSError as error:  # a cache that cannot be written only costs time next run
        if log:
            log(f"cannot cache the decoded split in {path.parent} ({error.strerror or error})")


class BatchSampler:
    """Random training batches drawn on the device: random crop + horizontal flip, then Lab.

    All randomness comes from a CPU generator seeded by the run's seed, so the batches are the
    same on every device. Draws are made ``DRAWS_PER_BLOCK`` at a time and copied to the device as
    one tensor; crops are then gathered there with indices computed on the device, so a batch costs
    no host-to-device copy. ``augment=False`` takes the centre crop, exactly as the test set is
    prepared. ``state_dict()`` / ``load_state_dict()`` continue the same batch stream after a resume.

    ``shard=(rank, world_size)``: one rank of a data-parallel run (``bench.engine.distributed``). Every
    rank draws the same global batch of ``world_size x batch_size`` from the run's seed and takes its
    own disjoint slice, so the ranks together see exactly the batches one process would see at the
    global batch size.
    """

    def __init__(self, images: torch.Tensor, *, size: int, batch_size: int, seed: int, device,
                 augment: bool = True, unpaired: bool = False, shard: tuple[int, int] = (0, 1)):
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.size = size
        self.batch_size = batch_size
        self.augment = augment
        self.unpaired = unpaired
        self.rank, self.world_size = shard
        height, width = self.images.shape[-2:]
        if height < size or width < size:
            raise BenchError(f"stored images {(height, width)} are smaller than the crop {size}")
        self.max_top, self.max_left = height - size, width - size
        self.centre = (centre_offset(height, size), centre_offset(width, size))
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = torch.arange(size, device=self.device)
        self._block: torch.Tensor | None = None  # (DRAWS_PER_BLOCK, 4, batch) on the device
        self._block_start: torch.Tensor | None = None  # the generator state the block was drawn from
        self._position = DRAWS_PER_BLOCK  # the next draw within the block; at the end, a new block

    def _draw_block(self) -> torch.Tensor:
        """Image index, crop top, crop left and flip for the next DRAWS_PER_BLOCK draws, on the device."""
        shape = (DRAWS_PER_BLOCK, self.batch_size * self.world_size)
        index = torch.randint(self.images.shape[0], shape, generator=self.generator)
        if self.augment:
            top = torch.randint(self.max_top + 1, shape, generator=self.generator)
            left = torch.randint(self.max_left + 1, shape, generator=self.generator)
            flip = (torch.rand(shape, generator=self.generator) < 0.5).long()
        else:
            top, left = (torch.full(shape, offset) for offset in self.centre)
            flip = torch.zeros(shape, dtype=torch.long)
        block = torch.stack([index, top, left, flip], dim=1)
        block = block[..., self.rank * self.batch_size : (self.rank + 1) * self.batch_size].contiguous()  # this rank's
        if self.device.type == "cuda":
            block = block.pin_memory()  # so the copy below is asynchronous
        return block.to(self.device, non_blocking=True)

    def _next_draw(self) -> torch.Tensor:
        if self._position == DRAWS_PER_BLOCK:
            self._block_start = self.generator.get_state()
            self._block = self._draw_block()
            self._position = 0
        draw = self._block[self._position]
        self._position += 1
        return draw

    def _draw(self) -> torch.Tensor:
        index, top, left, flip = self._next_draw()
        batch, size, width = self.batch_size, self.size, self.images.shape[-1]
        rows = (top[:, None] + self._offsets)[:, None, :, None].expand(batch, 3, size, width)
        # A flipped crop reads its columns right to left: left + (size - 1 - offset).
        cols = left[:, None] + self._offsets + flip[:, None] * (size - 1 - 2 * self._offsets)
        cols = cols[:, None, None, :].expand(batch, 3, size, size)
        # Rows, then columns: about twice as fast on the CPU as one 4-D advanced index.
        crops = self.images[index].gather(2, rows).gather(3, cols)
        return uint8_to_float(crops)

    def next(self) -> Batch:
        L, ab = rgb_to_normalized_lab(self._draw())
        if not self.unpaired:
            return Batch(L, ab)
        color_L, color_ab = rgb_to_normalized_lab(self._draw())
        return Batch(L, ab, color_L, color_ab)

    def _shape(self) -> dict:
        return {"images": self.images.shape[0], "size": self.size, "batch_size": self.batch_size,
                "augment": self.augment, "stored": list(self.images.shape[-2:])}

    def state_dict(self) -> dict:
        """Where the batch stream stands (tensors, ints and lists only: loads with weights_only=True)."""
        # Within a block: the state it was drawn from, to draw it again; after it: the current state.
        within = self._position < DRAWS_PER_BLOCK
        generator = self._block_start.clone() if within else self.generator.get_state()
        return self._shape() | {"generator": generator, "position": self._position}

    def load_state_dict(self, state: dict) -> None:
        """Continue the batch stream of the sampler ``state`` was taken from (same images and settings)."""
        try:
            generator, position = state["generator"], int(state["position"])
            shape = {key: state[key] for key in self._shape()}
        except (KeyError, TypeError, ValueError):
            raise BenchError("sampler state is not one saved by BatchSampler.state_dict()") from None
        if shape != self._shape():
            raise BenchError(f"sampler state was saved for {shape}, not for this sampler's {self._shape()}")
        if not 0 <= position <= DRAWS_PER_BLOCK:
            raise BenchError(f"sampler state position {position} is outside a block of {DRAWS_PER_BLOCK} draws")
        try:
            self.generator.set_state(generator)
        except (TypeError, RuntimeError):
            raise BenchError("sampler state holds no valid generator state") from None
        self._block, self._block_start, self._position = None, None, DRAWS_PER_BLOCK
        if position < DRAWS_PER_BLOCK:
            self._next_draw()  # draws the block again from the state it was drawn from
            self._position = position
