"""The ``coco`` dataset on a tiny fake COCO layout the test writes (never the 18 GB original)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
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
from bench.store.results import find_runs

COLOUR, GRAY_L, GRAY_RGB = 24, 3, 3  # colour photos, single-channel grays, RGB files holding a gray picture


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


@pytest.fixture
def fake_coco(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "data"
    train = write_split(root / "coco" / "train2017", 9, {"colour": COLOUR, "L": GRAY_L, "RGB": GRAY_RGB})
    write_split(root / "coco" / "val2017", 139, {"colour": 5, "L": 1})
    return root, train


def make(root: Path, **options) -> Coco:
    return Coco(root, CocoOptions.from_dict(options))


def names(dataset: Coco, split: str) -> list[str]:
    return [ref.name for ref in dataset.images(split)]


def test_registered_with_the_source_protocol_as_default():
    entry = registry.datasets().get("coco")
    assert entry.cls.Options().to_dict() == {"subset": 10_000, "subset_seed": 0, "full": False}
    assert split_sizes(10_000) == (8_000, 2_000) and split_sizes(10) == (8, 2) and split_sizes(2) == (1, 1)


def test_subset_is_colour_only_fixed_by_its_seed_and_split_80_20(fake_coco):
    root, kinds = fake_coco
    dataset = make(root, subset=20)
    train, test = names(dataset, "train"), names(dataset, "test")
    assert (len(train), len(test)) == (16, 2 * 2)
    assert not set(train) & set(test) and train == sorted(train)
    assert {kinds[name] for name in train + test} == {"colour"}  # both kinds of gray were skipped before counting
    # Fixed: the same from the cached choice, the same when it is chosen again, another with another seed.
    cached = dataset._selection_path(coco.jpeg_names(root / "coco" / "train2017"))
    assert cached.is_file() and json.loads(cached.read_text())["train"] == train
    assert (names(make(root, subset=20), "train"), names(make(root, subset=20), "test")) == (train, test)
    cached.unlink()
    assert (names(make(root, subset=20), "train"), names(make(root, subset=20), "test")) == (train, test)
    assert set(names(make(root, subset=20, subset_seed=1), "train")) != set(train)
    # The walk is recorded: how many files were looked at and why some were skipped.
    info = dataset.info()
    assert info["subset_seed"] == 0 and "16 train / 4 test" in info["split"]
    walk = info["subset_walk"]
    assert walk["train2017_files"] == COLOUR + GRAY_L + GRAY_RGB
    assert walk["examined"] == 20 + sum(walk["skipped"].values())
    assert set(walk["skipped"]) <= {"grayscale"}


def test_decoded_subset_drops_nothing_more(fake_coco):
    """The subset was chosen with the pipeline's own colour test: decoding it drops no image."""
    root, _ = fake_coco
    dataset = make(root, subset=10)
    train, test = load_split(dataset, "train", 36), load_split(dataset, "test", 32)
    assert (len(train), len(test)) == (8, 2) and train.dropped == {} and test.dropped == {}


def test_subset_larger_than_the_colour_images_is_refused(fake_coco):
    root, _ = fake_coco
    with pytest.raises(BenchError, match=f"subset=30 asks for more colour images .*{COLOUR} of 30"):
        names(make(root, subset=30), "train")


def test_full_trains_on_train2017_and_tests_on_val2017(fake_coco):
    root, _ = fake_coco
    dataset = make(root, full="true")
    assert len(names(dataset, "train")) == COLOUR + GRAY_L + GRAY_RGB  # grays dropped when decoded
    assert len(names(dataset, "test")) == 6
    assert load_split(dataset, "test", 32).dropped == {"grayscale": 1}
    assert "val2017 tests" in dataset.info()["split"]


@pytest.mark.parametrize("options, message", [
    ({"subset": "1"}, "subset must be at least 2"),
    ({"subset": "100", "full": "true"}, "exclude each other"),
    ({"subset_seed": "-1"}, "subset_seed must be 0 or more"),
    ({"subset": "many"}, "not a valid int"),
])
def test_bad_options_give_one_line_errors(options, message):
    with pytest.raises(BenchError, match=message):
        CocoOptions.from_dict(options)


def test_missing_files_offline_say_where_to_put_them(tmp_path):
    with pytest.raises(BenchError) as error:
        names(make(tmp_path / "empty"), "train")
    message = str(error.value)
    assert "train2017.zip" in message and str(tmp_path / "empty" / "coco" / "train2017") in message
    assert "\n" not in message


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_lands_files_and_checks_the_md5(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "train2017.zip", "w") as archive:
        for k in range(4):
            path = tmp_path / f"{k}.jpg"
            photo(k).save(path)
            archive.write(path, f"train2017/{k:012d}.jpg")
    digest = hashlib.md5((served / "train2017.zip").read_bytes()).hexdigest()
    monkeypatch.delenv("COLORBENCH_OFFLINE")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    handler = functools.partial(QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/train2017.zip"
        monkeypatch.setitem(coco.ZIPS, "train2017", (url, "0" * 32))
        with pytest.raises(BenchError, match="md5 checksum mismatch"):
            names(make(tmp_path / "bad", subset=3), "train")
        monkeypatch.setitem(coco.ZIPS, "train2017", (url, digest))
        dataset = make(tmp_path / "good", subset=3)
        assert len(names(dataset, "train")) == 2 and len(names(dataset, "test")) == 1
        httpd.shutdown()
    assert len(list((tmp_path / "good" / "coco" / "train2017").glob("*.jpg"))) == 4
    assert not (tmp_path / "good" / "coco" / "train2017.zip").exists()  # the zip goes once unpacked


def test_runs_end_to_end(fake_coco, run_cli):
    root, _ = fake_coco
    out = root.parent / "runs"
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "coco", "--dataset-option", "subset=10",
                           "--data-root", root, "--size", "32", "--budget", "2steps", "--device", "cpu",
                           "--metrics", "psnr", "--out", out)
    assert code == 0, err
    (folder,) = find_runs(out, "coco", "baseline", 0)
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "ok" and result["data"]["train_images"] == 8 and result["data"]["test_images"] == 2
    assert result["data"]["info"]["subset_seed"] == 0 and result["identity"]["dataset_options"]["subset"] == 10
