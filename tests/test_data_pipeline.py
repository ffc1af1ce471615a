"""bench.data: decode once (drop gray/unreadable with counts), cache on disk, batches with crop/flip/Lab."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from bench import data
from bench.store.digest import seal
from bench.data import BatchSampler, decode, load_split
from bench.dataset import Dataset, ImageRef
from bench.errors import BenchError
from bench.datasets.folder import FolderDataset


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """A decode cache per test, so entries of one test never serve another."""
    monkeypatch.setenv(data.ENV_CACHE, str(tmp_path_factory.mktemp("cache")))


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
    assert calls == [18, 18], "test images are decoded at the training storage size"
    assert len(list((data.cache_dir() / "decoded" / dataset.cache_key()).glob("test-16-*.pt"))) == 1
    again = load_split(dataset_of(mixed_folder), "test", 16)
    assert calls == [18, 18], "second load comes from the cache"
    assert torch.equal(first.images, again.images) and first.names == again.names
    assert first.fingerprint == again.fingerprint
    other = load_split(dataset, "test", 20)
    assert calls == [18, 18, 22, 22], "another size is another cache entry"
    assert other.fingerprint != first.fingerprint
    Image.fromarray(colour_array(9)).save(mixed_folder / "test" / "v.png")
    assert len(load_split(dataset_of(mixed_folder), "test", 16)) == 3, "a changed folder is decoded afresh"


class FilesDataset(Dataset):
    """Files under ``root/<split>/``, with a cache key that stays the same when they change (like flowers)."""

    name = "files"

    def images(self, split):
        return [ImageRef.from_path(path) for path in sorted((self.root / split).iterdir())]


@pytest.fixture
def files_dataset(tmp_path):
    for split, seeds in (("train", (0, 1)), ("test", (2, 3))):
        (tmp_path / split).mkdir()
        for seed in seeds:
            Image.fromarray(colour_array(seed)).save(tmp_path / split / f"{seed}.png")
    return FilesDataset(tmp_path)


@pytest.fixture
def decode_calls(monkeypatch):
    calls = []
    real_decode = data.decode
    monkeypatch.setattr(data, "decode", lambda ref, size: calls.append(ref.name) or real_decode(ref, size))
    return calls


def test_a_changed_or_touched_source_image_is_decoded_afresh(files_dataset, decode_calls):
    first = load_split(files_dataset, "test", 16)
    load_split(files_dataset, "test", 16)
    assert decode_calls == ["2.png", "3.png"], "unchanged: loaded from the cache, not decoded"
    changed = files_dataset.root / "test" / "3.png"
    Image.fromarray(colour_array(7)).save(changed)
    messages = []
    replaced = load_split(files_dataset, "test", 16, log=messages.append)
    assert decode_calls[2:] == ["2.png", "3.png"] and "source images changed" in messages[0]
    assert torch.equal(replaced.images[0], first.images[0]) and not torch.equal(replaced.images[1], first.images[1])
    assert replaced.fingerprint != first.fingerprint
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))  # touched only
    load_split(files_dataset, "test", 16)
    assert len(decode_calls) == 6
    load_split(files_dataset, "test", 16)
    assert len(decode_calls) == 6


def test_embedded_images_are_checked_by_their_fingerprint_or_else_their_names(tmp_path, decode_calls):
    class Embedded(Dataset):
        name = "embedded"
        content = {"a": colour_array(0), "b": colour_array(1)}
        fingerprints = True

        def images(self, split):
            return [ImageRef(name, lambda a=array: Image.fromarray(a), str(array.sum()) if self.fingerprints else None)
                    for name, array in self.content.items()]

    dataset = Embedded(tmp_path)
    load_split(dataset, "train", 16)
    dataset.content = {"a": colour_array(0), "b": colour_array(2)}
    load_split(dataset, "train", 16)
    assert decode_calls == ["a", "b", "a", "b"]
    dataset.fingerprints = False
    load_split(dataset, "train", 16)
    load_split(dataset, "train", 16)
    assert len(decode_calls) == 6, "without fingerprints only the names are compared"
    dataset.content = {"a": colour_array(0)}
    load_split(dataset, "train", 16)
    assert len(decode_calls) == 7


def rewrite_entry(path, **changes):
    """Well-formed, sealed again, with other content (garbled bytes: test_store_digests.py)."""
    stored = torch.load(path, weights_only=True)
    torch.save(seal(stored | changes), path)


@pytest.mark.parametrize("damage, reason", [
    (lambda path: path.write_bytes(b"garbage"), "unreadable"),
    (lambda path: path.write_bytes(path.read_bytes()[:100]), "unreadable"),
    (lambda path: rewrite_entry(path, version=1), "preprocessing version"),
    (lambda path: rewrite_entry(path, images=torch.zeros(2, 3, 8, 8, dtype=torch.uint8)), "inconsistent"),
    (lambda path: rewrite_entry(path, names=["x"]), "inconsistent"),
])
def test_a_broken_or_foreign_cache_entry_is_rebuilt(files_dataset, decode_calls, damage, reason):
    first = load_split(files_dataset, "test", 12)
    damage(data.cache_path(files_dataset, "test", 12))
    messages = []
    rebuilt = load_split(files_dataset, "test", 12, log=messages.append)
    assert len(decode_calls) == 4 and reason in messages[0]
    assert torch.equal(rebuilt.images, first.images) and rebuilt.names == first.names
    load_split(files_dataset, "test", 12)
    assert len(decode_calls) == 4, "the rebuilt entry is used again"


def test_cache_entries_are_written_atomically_under_a_per_process_name(files_dataset, monkeypatch):
    targets = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, target: targets.append(Path(getattr(target, "name", target)))
                        or real_save(obj, target))  # a path or, written through a file object, its handle
    load_split(files_dataset, "train", 16)
    entry = data.cache_path(files_dataset, "train", 16)
    (written,) = targets
    assert written.parent == entry.parent and written != entry and str(os.getpid()) in written.name
    assert entry.is_file() and sorted(p.name for p in entry.parent.iterdir()) == [entry.name]


def write_near_gray(path, side=144):
    """Gray plus pixel-sized chroma noise: coloured at full size, averaged away when shrunk a lot."""
    noise = np.random.default_rng(0).choice([-8, 8], size=(side, side))
    rgb = np.full((side, side, 3), 128, np.int16)
    rgb[..., 0] += noise
    rgb[..., 2] -= noise
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return Image.open(path)


def test_the_test_set_holds_the_same_images_at_every_size(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    Image.fromarray(colour_array(0)).save(tmp_path / "train" / "a.png")
    Image.fromarray(colour_array(1)).save(tmp_path / "test" / "colour.png")
    Image.fromarray(np.repeat(colour_array(2)[..., :1], 3, axis=2)).save(tmp_path / "test" / "gray.png")
    near_gray = write_near_gray(tmp_path / "test" / "near-gray.png")
    # The premise: deciding on the resized image (as before) keeps it at 64 and drops it at 32.
    at = lambda size: np.asarray(ImageOps.fit(near_gray, (size, size), Image.Resampling.BICUBIC))  # noqa: E731
    assert data.is_grayscale(at(32)) and not data.is_grayscale(at(64))
    small, large = (load_split(dataset_of(tmp_path), "test", size) for size in (32, 64))
    assert small.names == large.names == ["test/colour.png", "test/near-gray.png"]
    assert small.dropped == large.dropped == {"grayscale": 1}


def test_test_images_are_prepared_exactly_as_training_images(tmp_path):
    """On the stored tensors: the centre crop of a stored training image is that image's test tensor."""
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
    for i, shape in enumerate([(40, 40), (37, 61), (90, 50)]):
        Image.fromarray(colour_array(i, shape)).save(tmp_path / "train" / f"{i}.png")
        Image.fromarray(colour_array(i, shape)).save(tmp_path / "train" / f"{i}.jpg", quality=90)
    for path in (tmp_path / "train").iterdir():
        (tmp_path / "test" / path.name).write_bytes(path.read_bytes())
    dataset = dataset_of(tmp_path)
    train = load_split(dataset, "train", data.train_load_size(32))
    test = load_split(dataset, "test", 32)
    assert train.images.shape[-1] == 36 and test.images.shape == (6, 3, 32, 32)
    assert [n.removeprefix("train/") for n in train.names] == [n.removeprefix("test/") for n in test.names]
    assert torch.equal(data.centre_crop(train.images, 32), test.images)
    assert torch.equal(train.images[:, :, 2:34, 2:34], test.images)
    centre = sampler(train.images, size=32, batch_size=12, augment=False)._draw()
    for crop in centre:  # the sampler's centre crop is the test preparation too
        assert any(torch.equal(crop, image.float() / 255) for image in test.images)


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



def batches(draw, count):
    return [draw.next() for _ in range(count)]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for name in ("L", "ab", "color_L", "color_ab"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None and y is None) or torch.equal(x, y)


@pytest.mark.parametrize("done, unpaired", [(0, False), (3, False), (64, False), (40, True)])
def test_a_resumed_sampler_continues_the_same_batch_stream(tmp_path, done, unpaired):
    images = image_set()
    original = sampler(images, unpaired=unpaired)
    batches(original, done)
    torch.save({"sampler": original.state_dict()}, tmp_path / "state.pt")
    expected = batches(original, 70)  # crosses the next block boundary
    resumed = sampler(images, unpaired=unpaired, seed=123)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["sampler"])
    assert_same_batches(batches(resumed, 70), expected)


def test_a_sampler_state_from_other_settings_is_refused():
    state = sampler(image_set()).state_dict()
    with pytest.raises(BenchError, match="batch_size"):
        sampler(image_set(), batch_size=5).load_state_dict(state)
    with pytest.raises(BenchError, match="not one saved"):
        sampler(image_set()).load_state_dict({"position": 0})


def test_draws_are_made_in_blocks_and_copied_to_the_device_once_per_block(monkeypatch):
    draw = sampler(image_set(), unpaired=True)
    blocks = []
    real = draw._draw_block
    monkeypatch.setattr(draw, "_draw_block", lambda: blocks.append(1) or real())
    batches(draw, 65)  # 130 draws
    assert len(blocks) == -(-130 // data.DRAWS_PER_BLOCK)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_are_the_same_on_the_gpu():
    images = image_set()
    cpu, gpu = sampler(images), sampler(images, device="cuda")
    for _ in range(70):
        assert torch.equal(cpu._draw(), gpu._draw().cpu())
