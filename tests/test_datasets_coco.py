"""The ``coco`` dataset on a tiny fake COCO layout the test writes (never the 18 GB original)."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import registry
from bench.api import BenchError
from bench.data import load_split
from bench.datasets import coco
from bench.datasets.coco import Coco, CocoOptions, split_sizes
from tests.helpers import find_runs

COLOUR, GRAY_L, GRAY_RGB = 24, 3, 3  # colour photos, single-channel grays, RGB files holding a gray picture
OFFICIAL = {  # the published COCO 2017 zips and their md5s, written out here rather than read from the plugin
    "train2017": ("http://images.cocodataset.org/zips/train2017.zip", "cced6f7f71b7629ddf16f17bbcfab6b2"),
    "val2017": ("http://images.cocodataset.org/zips/val2017.zip", "442b8da7639aecaf257c1dceb8ba8c80"),
}


def photo(seed: int, kind: str = "colour") -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    if kind == "colour":
        return Image.fromarray(pixels)
    gray = Image.fromarray(pixels[..., 0])
    return gray if kind == "L" else gray.convert("RGB")


def write_split(folder: Path, first_id: int, counts: dict[str, int]) -> dict[str, str]:
    """COCO-named JPEGs (000000xxxxxx.jpg) of each kind, shuffled among each other; name -> kind."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    np.random.default_rng(first_id).shuffle(kinds)
    written = {}
    for offset, kind in enumerate(kinds):
        name = f"{first_id + offset * 7:012d}.jpg"
        photo(first_id + offset, kind).save(folder / name, quality=95)
        written[name] = kind
    return written


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> Path:
    """Each test chooses its subsets afresh, in a cache of its own."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("COLORBENCH_CACHE", str(cache))
    return cache


@pytest.fixture
def fake_coco(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "data"
    train = write_split(root / "coco" / "train2017", 9, {"colour": COLOUR, "L": GRAY_L, "RGB": GRAY_RGB})
    write_split(root / "coco" / "val2017", 139, {"colour": 5, "L": 1})
    return root, train


def make(root: Path, **options) -> Coco:
    return Coco(root, CocoOptions.from_dict({key: str(value) for key, value in options.items()}))


def names(dataset: Coco, split: str) -> list[str]:
    return [ref.name for ref in dataset.images(split)]


def expected_walk(kinds: dict[str, str], count: int, seed: int) -> tuple[list[str], int]:
    """The documented rule: file names in the order drawn from ``seed``; the first ``count`` colour ones
    are chosen. Returns them (in the order found) and how many grays were passed on the way."""
    order = sorted(kinds)
    random.Random(seed).shuffle(order)
    chosen, grays = [], 0
    for name in order:
        if kinds[name] == "colour":
            chosen.append(name)
            if len(chosen) == count:
                return chosen, grays
        else:
            grays += 1
    raise AssertionError("the fake layout has too few colour images")


def test_registered_with_the_source_protocol_as_default():
    entry = registry.datasets().get("coco")
    assert entry.cls.Options().to_dict() == {"subset": 10_000, "subset_seed": 0, "full": False}
    assert split_sizes(10_000) == (8_000, 2_000)
    assert split_sizes(10) == (8, 2) and split_sizes(3) == (2, 1) and split_sizes(2) == (1, 1)


def test_subset_is_colour_only_first_found_train_and_grays_are_counted(fake_coco):
    root, kinds = fake_coco
    dataset = make(root, subset=20)
    train, test = names(dataset, "train"), names(dataset, "test")
    found, grays = expected_walk(kinds, 20, seed=0)
    assert (len(train), len(test)) == (16, 4)
    assert train == sorted(found[:16]) and test == sorted(found[16:])  # the first 80 % found train
    assert not set(train) & set(test)
    assert {kinds[name] for name in train + test} == {"colour"}  # both kinds of gray were skipped
    assert grays > 0, "the fake layout should put a gray on the walk"
    info = dataset.info()
    assert info["subset_seed"] == 0 and "16 train / 4 test" in info["split"]
    assert info["subset_walk"] == {"train2017_files": COLOUR + GRAY_L + GRAY_RGB, "examined": 20 + grays,
                                   "skipped": {"grayscale": grays}}


def test_subset_choice_is_fixed_cached_and_changed_by_its_seed(fake_coco, own_cache, monkeypatch):
    root, kinds = fake_coco
    first = make(root, subset=20)
    choice = names(first, "train"), names(first, "test")
    assert (names(make(root, subset=20), "train"), names(make(root, subset=20), "test")) == choice

    (cached,) = (own_cache / "coco").glob("subset-20-seed0-*.json")
    with monkeypatch.context() as patch:  # read back from the cache: no walk
        patch.setattr(coco, "_choose", lambda *args: pytest.fail("chose again despite the cache"))
        assert (names(make(root, subset=20), "train"), names(make(root, subset=20), "test")) == choice
    cached.unlink()  # chosen again: the same
    assert (names(make(root, subset=20), "train"), names(make(root, subset=20), "test")) == choice

    other = make(root, subset=20, subset_seed=1)
    assert set(names(other, "train") + names(other, "test")) != set(choice[0] + choice[1])
    found, grays = expected_walk(kinds, 20, seed=1)
    assert names(other, "train") == sorted(found[:16])
    assert other.info()["subset_seed"] == 1 and other.info()["subset_walk"]["skipped"] == {"grayscale": grays}


def test_decoded_subset_drops_nothing_more(fake_coco):
    """The subset was chosen with the pipeline's own colour test: decoding it drops no image."""
    root, _ = fake_coco
    dataset = make(root, subset=10)
    train, test = load_split(dataset, "train", 32), load_split(dataset, "test", 32)
    assert (len(train), len(test)) == (8, 2) and train.dropped == {} and test.dropped == {}


def test_full_trains_on_train2017_and_tests_on_val2017(fake_coco):
    root, kinds = fake_coco
    dataset = make(root, full="true")
    assert names(dataset, "train") == sorted(kinds)  # every file; grays are dropped when decoded
    assert len(names(dataset, "test")) == 6
    assert load_split(dataset, "test", 32).dropped == {"grayscale": 1}
    assert "val2017 tests" in dataset.info()["split"]


@pytest.mark.parametrize("options, message", [
    ({"subset": "1"}, "coco: option subset must be at least 2"),
    ({"subset": "100", "full": "true"}, "subset=100 and full=true exclude each other"),
    ({"subset_seed": "-1"}, "coco: option subset_seed must be 0 or more"),
    ({"subset": "many"}, "subset.*not a valid int"),
])
def test_bad_options_give_one_line_errors(options, message):
    with pytest.raises(BenchError, match=message) as error:
        CocoOptions.from_dict(options)
    assert "\n" not in str(error.value)


def test_subset_larger_than_the_colour_images_is_refused(fake_coco):
    root, _ = fake_coco
    with pytest.raises(BenchError) as error:
        names(make(root, subset=30), "train")
    message = str(error.value)
    assert "subset=30 asks for more colour images than" in message and f"({COLOUR} of 30;" in message
    assert f"{GRAY_L + GRAY_RGB} grayscale" in message and "\n" not in message


@pytest.mark.parametrize("options, split", [({}, "train2017"), ({"full": "true"}, "val2017")])
def test_missing_folder_offline_names_the_path_and_the_url(tmp_path, options, split):
    root = tmp_path / "data"
    if split == "val2017":  # train2017 is there, val2017 is not
        write_split(root / "coco" / "train2017", 1, {"colour": 2})
    with pytest.raises(BenchError) as error:
        names(make(root, **options), "test")
    message = str(error.value)
    assert "COLORBENCH_OFFLINE" in message and OFFICIAL[split][0] in message
    assert str(root / "coco" / split) in message and "\n" not in message


@pytest.fixture
def online(monkeypatch) -> list[dict]:
    """Downloads allowed, torchvision's downloader replaced by one that unpacks a few photos (no network).
    Returns the calls it received."""
    import torchvision.datasets.utils

    monkeypatch.delenv("COLORBENCH_OFFLINE")
    calls = []

    def fake_download(url, download_root, extract_root=None, filename=None, md5=None, remove_finished=False):
        calls.append({"url": url, "download_root": download_root, "md5": md5, "remove_finished": remove_finished})
        split = Path(url).stem  # train2017.zip unpacks to train2017/
        write_split(Path(download_root) / split, len(calls) * 100, {"colour": 4, "L": 1})

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake_download)
    return calls


def test_download_fetches_the_official_zips_with_their_md5(tmp_path, online):
    root = tmp_path / "data"
    subset = make(root, subset=3)
    assert (len(names(subset, "train")), len(names(subset, "test"))) == (2, 1)
    assert online == [{"url": OFFICIAL["train2017"][0], "download_root": str(root / "coco"),
                       "md5": OFFICIAL["train2017"][1], "remove_finished": True}]
    full = make(root, full="true")
    assert len(names(full, "train")) == 5 and len(names(full, "test")) == 5
    assert [(call["url"], call["md5"]) for call in online] == [OFFICIAL["train2017"], OFFICIAL["val2017"]]


@pytest.mark.parametrize("failure, reason", [
    (RuntimeError("File not found or corrupted."), "md5 checksum mismatch"),  # torchvision's md5 failure
    (zipfile.BadZipFile("File is not a zip file"), "bad zip archive: File is not a zip file"),
    (OSError("<urlopen error [Errno -3] Temporary failure in name resolution>"), "Temporary failure"),
])
def test_download_failure_is_one_line_with_what_to_do(tmp_path, online, monkeypatch, failure, reason):
    import torchvision.datasets.utils

    def failing(*args, **kwargs):
        raise failure

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", failing)
    with pytest.raises(BenchError) as error:
        names(make(tmp_path / "data"), "train")
    message = str(error.value)
    assert message.startswith("cannot get COCO train2017 (") and reason in message
    assert OFFICIAL["train2017"][0] in message and str(tmp_path / "data" / "coco" / "train2017") in message
    assert "\n" not in message


def test_download_that_unpacks_no_images_says_so(tmp_path, online, monkeypatch):
    import torchvision.datasets.utils

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", lambda *args, **kwargs: None)
    with pytest.raises(BenchError, match="no COCO images in .*train2017 even after unpacking"):
        names(make(tmp_path / "data"), "train")


def test_runs_end_to_end(fake_coco, run_cli):
    root, _ = fake_coco
    out = root.parent / "runs"
    common = ("--dataset", "coco", "--data-root", root, "--size", "32", "--budget", "2steps", "--device", "cpu",
              "--seeds", "1", "--metrics", "psnr", "--out", out)
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset-option", "subset=10", *common)
    assert code == 0, err
    (folder,) = find_runs(out, "coco", "baseline", 0)
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "ok" and result["budget"]["steps"] == 2
    assert (result["data"]["train_images"], result["data"]["test_images"]) == (8, 2)
    assert result["identity"]["dataset_options"] == {"subset": 10, "subset_seed": 0, "full": False}
    info = result["data"]["info"]
    assert info["subset_seed"] == 0 and info["subset_walk"]["train2017_files"] == COLOUR + GRAY_L + GRAY_RGB

    code, _, err = run_cli("run", "--methods", "baseline", "--dataset-option", "subset=1", *common)
    assert code == 2 and "subset must be at least 2" in err and len(err.strip().splitlines()) == 1
