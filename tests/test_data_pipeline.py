"""bench.data: decode once (drop gray/unreadable with counts), cache on disk, batches with crop/flip/Lab."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from bench import data
from bench.data import BatchSampler, decode, load_split
from bench.dataset import ImageRef
from bench.errors import BenchError
from bench.datasets.folder import FolderDataset


def colour_array(seed: int, shape=(24, 30)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def ref_of(image: Image.Image, name="x") -> ImageRef:
    return ImageRef(name, lambda: image.copy())


def ref_of_bytes(payload: bytes, name="x") -> ImageRef:
    return ImageRef(name, lambda: Image.open(io.BytesIO(payload)))


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def mixed_folder(tmp_path):
    """Colour PNG/JPEGs plus one gray-mode image, one RGB-but-gray image, one corrupt and one truncated file."""
    folder = tmp_path / "mixed"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    for i in range(3):
        Image.fromarray(colour_array(i)).save(folder / "train" / f"colour{i}.png")
    Image.fromarray(colour_array(3)).save(folder / "train" / "colour3.jpg", quality=95)
    Image.fromarray(colour_array(4)[..., 0]).save(folder / "train" / "gray-mode.png")
    Image.fromarray(np.repeat(colour_array(5)[..., :1], 3, axis=2)).save(folder / "train" / "gray-rgb.png")
    (folder / "train" / "corrupt.jpg").write_bytes(b"definitely not a JPEG")
    full = encoded(Image.fromarray(colour_array(6, (64, 64))), "JPEG")
    (folder / "train" / "truncated.jpg").write_bytes(full[: len(full) // 2])
    Image.fromarray(colour_array(7)).save(folder / "test" / "t.png")
    Image.fromarray(colour_array(8)).save(folder / "test" / "u.png")
    return folder


def dataset_of(folder) -> FolderDataset:
    return FolderDataset("unused", FolderDataset.Options.from_dict({"path": str(folder)}))


def test_gray_and_unreadable_images_are_dropped_and_counted(mixed_folder):
    messages = []
    train = load_split(dataset_of(mixed_folder), "train", 16, log=messages.append, use_cache=False)
    assert sorted(train.names) == ["train/colour0.png", "train/colour1.png", "train/colour2.png", "train/colour3.jpg"]
    assert train.dropped == {"grayscale": 2, "unreadable": 2}
    assert train.images.shape == (4, 3, 16, 16) and train.images.dtype == torch.uint8
    assert messages == ["folder/train: skipped 2 grayscale, 2 unreadable of 8 images"]


def test_decode_cache_is_written_once_reused_and_keyed_by_size(mixed_folder, monkeypatch):
    calls = []
    real_decode = data.decode
    monkeypatch.setattr(data, "decode", lambda ref, size: calls.append(size) or real_decode(ref, size))
    dataset = dataset_of(mixed_folder)
    first = load_split(dataset, "test", 16)
    assert calls == [16, 16]
    assert len(list((data.cache_dir() / "decoded" / dataset.cache_key()).glob("test-16-*.pt"))) == 1
    again = load_split(dataset_of(mixed_folder), "test", 16)
    assert calls == [16, 16], "second load comes from the cache"
    assert torch.equal(first.images, again.images) and first.names == again.names
    load_split(dataset, "test", 20)
    assert calls == [16, 16, 20, 20], "another size is another cache entry"
    Image.fromarray(colour_array(9)).save(mixed_folder / "test" / "v.png")
    assert len(load_split(dataset_of(mixed_folder), "test", 16)) == 3, "a changed folder is decoded afresh"


def test_a_broken_cache_entry_is_rebuilt(mixed_folder):
    dataset = dataset_of(mixed_folder)
    first = load_split(dataset, "test", 12)
    (entry,) = (data.cache_dir() / "decoded" / dataset.cache_key()).glob("test-12-*.pt")
    entry.write_bytes(b"garbage")
    assert torch.equal(load_split(dataset, "test", 12).images, first.images)


@pytest.mark.parametrize("mode", ["P", "CMYK", "RGBA"])
def test_colour_modes_decode_to_rgb(mode):
    rgb = Image.fromarray(colour_array(1, (16, 16)))
    image = rgb.convert(mode) if mode != "P" else rgb.quantize(64)
    result = decode(ref_of(image), 16)
    assert result.shape == (16, 16, 3)
    if mode == "CMYK":  # through a CMYK JPEG, as cameras and print workflows write them
        from_jpeg = decode(ref_of_bytes(encoded(image, "JPEG", quality=95)), 16)
        assert np.abs(from_jpeg.astype(int) - np.asarray(rgb, dtype=int)).mean() < 25


def test_transparent_pixels_become_white():
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:4] = (200, 30, 40, 255)  # top half opaque red, bottom half fully transparent black
    result = decode(ref_of(Image.fromarray(rgba)), 8)
    assert (result[:4] == (200, 30, 40)).all() and (result[4:] == 255).all()


def png16(rgb: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    height, width, _ = rgb.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_sixteen_bit_images_colour_decodes_and_gray_is_dropped():
    rgb8 = colour_array(2, (16, 16))
    result = decode(ref_of_bytes(png16(rgb8.astype(np.uint16) * 257)), 16)
    assert np.abs(result.astype(int) - rgb8).max() <= 1
    gray16 = Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 200)
    assert gray16.mode.startswith("I;16")
    assert decode(ref_of_bytes(encoded(gray16, "PNG")), 16) == "grayscale"
    assert decode(ref_of(Image.new("LA", (8, 8))), 8) == "grayscale"


def test_exif_orientation_is_applied():
    array = colour_array(3, (8, 16))  # stored landscape, displayed portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    tagged = encoded(Image.fromarray(array), "PNG", exif=exif)
    upright = Image.fromarray(array).transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(decode(ref_of_bytes(tagged), 8), decode(ref_of(upright), 8))
    assert not np.array_equal(decode(ref_of_bytes(tagged), 8), decode(ref_of(Image.fromarray(array)), 8))


def test_decompression_bombs_count_as_unreadable(monkeypatch):
    payload = encoded(Image.fromarray(colour_array(4, (32, 32))), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1024 pixels > 2x the limit: PIL refuses to open
    assert decode(ref_of_bytes(payload), 16) == "unreadable"


def image_set(count=5, size=20) -> torch.Tensor:
    return torch.from_numpy(np.stack([colour_array(i, (size, size)) for i in range(count)])).permute(0, 3, 1, 2)


def sampler(images, **kwargs) -> BatchSampler:
    return BatchSampler(images, **{"size": 16, "batch_size": 6, "seed": 0, "device": "cpu"} | kwargs)


def test_batches_are_deterministic_for_a_seed():
    images = image_set()
    a, b, c = sampler(images), sampler(images), sampler(images, seed=1)
    for _ in range(3):
        batch_a, batch_b, batch_c = a.next(), b.next(), c.next()
        assert torch.equal(batch_a.L, batch_b.L) and torch.equal(batch_a.ab, batch_b.ab)
    assert not torch.equal(batch_a.ab, batch_c.ab)


def test_batches_are_random_crops_and_flips_of_the_stored_images():
    images = image_set()
    draw = sampler(images)._draw
    candidates = {}
    for index in range(images.shape[0]):
        for top in range(5):
            for left in range(5):
                crop = images[index, :, top:top + 16, left:left + 16].float() / 255
                candidates[(index, top, left, False)] = crop
                candidates[(index, top, left, True)] = crop.flip(-1)
    seen = set()
    for _ in range(4):
        for crop in draw():
            matches = [key for key, candidate in candidates.items() if torch.equal(candidate, crop)]
            assert len(matches) == 1
            seen.add(matches[0])
    assert {key[3] for key in seen} == {False, True}, "both flipped and unflipped crops occur"
    assert len({key[1:3] for key in seen}) > 3, "crops come from several offsets"
    centre = sampler(images, augment=False)._draw()
    assert all(any(torch.equal(crop, images[i, :, 2:18, 2:18].float() / 255) for i in range(5)) for crop in centre)


def test_batch_shapes_lab_ranges_and_unpaired_colour_images():
    images = image_set()
    paired = sampler(images).next()
    assert paired.L.shape == (6, 1, 16, 16) and paired.ab.shape == (6, 2, 16, 16)
    assert paired.color_L is None and paired.color_ab is None
    assert paired.L.min() >= -1 and paired.L.max() <= 1 and paired.ab.abs().max() <= 1
    unpaired = sampler(images, unpaired=True).next()
    assert torch.equal(unpaired.L, paired.L), "the gray side is drawn as in the paired case"
    assert unpaired.color_ab.shape == (6, 2, 16, 16)
    assert not torch.equal(unpaired.color_ab, unpaired.ab), "colour images drawn independently"


def test_stored_images_smaller_than_the_crop_are_refused():
    with pytest.raises(BenchError, match="smaller than the crop"):
        sampler(image_set(size=12))

