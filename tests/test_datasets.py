"""The dataset plugins: folder (split rules, errors, cache key), sample, and the real Oxford-17 flowers."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch
from PIL import Image

from bench import registry
from bench.api import BenchError
from bench.data import decode_all
from bench.datasets import flowers
from bench.datasets.flowers import Flowers17
from bench.datasets.folder import FolderDataset, hash_split
from bench.datasets.sample import SampleDataset
from bench.store import safe_name


def write_image(path, seed=0, size=(10, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def folder_dataset(path, **options):
    return FolderDataset("unused-data-root", FolderDataset.Options.from_dict({"path": str(path)} | options))


def names(dataset, split):
    return [ref.name for ref in dataset.images(split)]


def test_all_builtin_datasets_are_registered():
    assert {"sample", "flowers", "flowers102", "cifar10", "folder"} <= set(registry.list_datasets())


def test_folder_finds_images_recursively_by_suffix_and_names_them_by_relative_path(tmp_path):
    for relative in ("a.png", "b.JPG", "sub/c.jpeg", "sub/deeper/d.webp"):
        write_image(tmp_path / relative)
    (tmp_path / "notes.txt").write_text("not an image")
    write_image(tmp_path / ".hidden.png")
    write_image(tmp_path / ".thumbs" / "e.png")
    dataset = folder_dataset(tmp_path, test_fraction=0.5)
    found = names(dataset, "train") + names(dataset, "test")
    assert sorted(found) == ["a.png", "b.JPG", "sub/c.jpeg", "sub/deeper/d.webp"]
    assert all("/" not in safe_name(n) and safe_name(n) not in ("", "_") for n in found)
    assert dataset.images("test")[0].open().size == (12, 10)


def test_folder_hash_split_ignores_listing_order_and_is_stable_when_files_are_added():
    names_ = [f"photos/{i:03d}.jpg" for i in range(200)]
    split = hash_split(names_, 0.2)
    assert 20 < len(split["test"]) < 60 and len(split["train"]) + len(split["test"]) == 200
    shuffled = random.Random(0).sample(names_, len(names_))
    assert {k: set(v) for k, v in hash_split(shuffled, 0.2).items()} == {k: set(v) for k, v in split.items()}
    grown = hash_split(names_ + [f"new/{i}.jpg" for i in range(50)], 0.2)
    assert set(split["test"]) <= set(grown["test"]) and set(split["train"]) <= set(grown["train"])


def test_folder_hash_split_keeps_both_splits_non_empty_for_tiny_folders():
    for count in (2, 3):
        split = hash_split([f"{i}.png" for i in range(count)], 0.01)
        assert split["test"] and split["train"]
        split = hash_split([f"{i}.png" for i in range(count)], 0.99)
        assert split["test"] and split["train"]


def test_folder_uses_train_and_test_subfolders_when_present(tmp_path):
    for relative in ("train/x1.png", "train/nested/x2.png", "test/y.png"):
        write_image(tmp_path / relative)
    dataset = folder_dataset(tmp_path)
    assert names(dataset, "train") == ["train/nested/x2.png", "train/x1.png"]
    assert names(dataset, "test") == ["test/y.png"]
    assert "subfolders" in dataset.info()["split"]


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "needs a path"),
    (lambda p: p / "missing", "does not exist"),
    (lambda p: write_image(p / "one.png"), "is not a directory"),
])
def test_folder_option_errors_are_one_line(tmp_path, setup, message):
    path = setup(tmp_path)
    options = {} if path is None else {"path": str(path)}
    with pytest.raises(BenchError, match=message) as caught:
        FolderDataset.Options.from_dict(options)
    assert "\n" not in str(caught.value)


def test_folder_without_usable_images_says_so(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(BenchError, match="no images"):
        folder_dataset(tmp_path).images("train")
    write_image(tmp_path / "only.png")
    with pytest.raises(BenchError, match="single image"):
        folder_dataset(tmp_path).images("train")
    write_image(tmp_path / "train" / "a.png")
    (tmp_path / "test").mkdir()
    with pytest.raises(BenchError, match="test holds no images"):
        folder_dataset(tmp_path).images("train")
    with pytest.raises(BenchError, match="between 0 and 1"):
        folder_dataset(tmp_path, test_fraction=1)


def test_folder_cache_key_follows_path_and_contents(tmp_path):
    for i in range(4):
        write_image(tmp_path / "one" / f"{i}.png", seed=i)
        write_image(tmp_path / "two" / f"{i}.png", seed=i)
    key = folder_dataset(tmp_path / "one").cache_key()
    assert key == folder_dataset(tmp_path / "one").cache_key()
    assert key != folder_dataset(tmp_path / "two").cache_key(), "same names, other folder"
    assert key != folder_dataset(tmp_path / "one", test_fraction=0.5).cache_key()
    changed = tmp_path / "one" / "2.png"
    write_image(changed, seed=99, size=(11, 12))
    os.utime(changed, ns=(1, 1))
    assert folder_dataset(tmp_path / "one").cache_key() != key, "a changed file"
    edited = folder_dataset(tmp_path / "one").cache_key()
    write_image(tmp_path / "one" / "new.png")
    assert folder_dataset(tmp_path / "one").cache_key() != edited, "an added file"
    assert safe_name(key) == key


def test_folder_through_the_cli(run_cli, tmp_path):
    for i in range(6):
        write_image(tmp_path / "photos" / f"{i}.png", seed=i, size=(20, 20))
    code, out, err = run_cli("run", "--methods", "baseline", "--dataset", f"folder:{tmp_path / 'photos'}",
                             "--dataset-option", "test_fraction=0.5", "--size", "16", "--budget", "1steps",
                             "--device", "cpu", "--metrics", "psnr", "--seeds", "1", "--out", tmp_path / "runs", "--json")
    assert code == 0, err
    result = json.loads(out)[0]
    assert result["dataset"] == "folder" and result["status"] == "ok"
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", f"folder:{tmp_path / 'nowhere'}",
                           "--budget", "1steps", "--out", tmp_path / "runs")
    assert code == 2 and "does not exist" in err


def test_sample_needs_no_files_and_its_test_crops_do_not_depend_on_the_train_count():
    small = SampleDataset("unused", SampleDataset.Options.from_dict({"train_per_photo": 2}))
    default = SampleDataset("unused")
    assert len(small.images("train")) == 2 * 7 and len(default.images("train")) == 24 * 7
    first, other = default.images("test"), small.images("test")
    assert [r.name for r in first] == [r.name for r in other]
    assert np.array_equal(np.asarray(first[5].open()), np.asarray(other[5].open()))
    assert small.cache_key() != default.cache_key()


def test_sample_crops_carry_a_fingerprint_of_their_photo_and_box(monkeypatch):
    from skimage import data as skimage_data

    refs = SampleDataset("unused").images("test")
    fingerprints = [ref.fingerprint for ref in refs]
    assert all(fingerprints) and len(set(fingerprints)) == len(refs)
    assert fingerprints == [ref.fingerprint for ref in SampleDataset("unused").images("test")]
    coffee = skimage_data.coffee()
    monkeypatch.setattr(skimage_data, "coffee", lambda: 255 - coffee)  # another release's photo
    changed = [a.name for a, b in zip(refs, SampleDataset("unused").images("test")) if a.fingerprint != b.fingerprint]
    assert changed == [ref.name for ref in refs if ref.name.startswith("coffee-")]


def test_flowers_lists_the_per_class_split_of_the_real_files(shared_flowers_root, monkeypatch):
    monkeypatch.setattr(flowers, "URL", "http://127.0.0.1:9/must-not-download.tgz")
    dataset = Flowers17(shared_flowers_root)
    train, test = names(dataset, "train"), names(dataset, "test")
    assert (len(train), len(test)) == (1020, 340)
    assert train[:60] == [f"image_{n:04d}.jpg" for n in range(1, 61)]
    assert test[:20] == [f"image_{n:04d}.jpg" for n in range(61, 81)]
    assert train[60] == "image_0081.jpg" and train[-1] == "image_1340.jpg" and test[-1] == "image_1360.jpg"
    assert not set(train) & set(test)
    first = shared_flowers_root / "oxford17flowers" / "jpg" / "image_0001.jpg"
    assert dataset.images("train")[0].fingerprint == f"{first.stat().st_size}:{first.stat().st_mtime_ns}"
    subset = dataset.images("train")[::51] + dataset.images("test")[::34]
    decoded = decode_all(subset, 32, "flowers subset")
    assert decoded.images.shape == (len(subset), 3, 32, 32) and decoded.images.dtype == torch.uint8
    assert len(decoded) + sum(decoded.dropped.values()) == len(subset) == 30
