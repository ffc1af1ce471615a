"""Downloaders of flowers / flowers102 / cifar10 against tiny archives served from 127.0.0.1.

The real URLs are never contacted: each test builds a miniature copy of the official archive, points
the dataset's URL (and md5s) at a local HTTP server, and checks where the files land, that a bad
checksum is refused, that being offline gives a one-line error naming where the files go, and that
a second call reuses the local files.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import shutil
import socket
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest
import scipy.io
from PIL import Image
from torchvision.datasets import CIFAR10, Flowers102

from bench.api import BenchError
from bench.data import decode
from bench.datasets import flowers
from bench.datasets.flowers import Flowers17
from bench.datasets.torchvision_sets import Cifar10, Flowers102 as Flowers102Dataset

WRONG_MD5 = "0" * 32


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving ``.dir``; ``.requests`` lists the paths asked for."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}/", dir=served, requests=requests)
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def jpeg_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


# Each case makes a miniature official archive in the served folder and points the dataset at it.
@dataclass
class Case:
    dataset: Callable
    make: Callable  # (served dir) -> None
    patch: Callable  # (monkeypatch, base url, served dir, good md5?) -> None
    landed: Callable  # (data root) -> a file the download must have put in place
    counts: tuple[int, int]  # train, test


def make_flowers17(served: Path) -> None:
    write_tar(served / "17flowers.tgz", {f"jpg/image_{n:04d}.jpg": jpeg_bytes(n) for n in range(1, 9)})


def patch_flowers17(monkeypatch, url: str, served: Path, good: bool) -> None:
    # 2 classes x 4 images (3 train / 1 test) stand in for 17 x 80 (60 / 20).
    monkeypatch.setattr(flowers, "CLASSES", 2)
    monkeypatch.setattr(flowers, "PER_CLASS", 4)
    monkeypatch.setattr(flowers, "TRAIN_PER_CLASS", 3)
    monkeypatch.setattr(flowers, "URL", url + "17flowers.tgz")
    monkeypatch.setattr(flowers, "MD5", md5(served / "17flowers.tgz") if good else WRONG_MD5)


def make_flowers102(served: Path) -> None:
    write_tar(served / "102flowers.tgz", {f"jpg/image_{n:05d}.jpg": jpeg_bytes(n) for n in range(1, 7)})
    scipy.io.savemat(served / "imagelabels.mat", {"labels": np.array([[1, 1, 2, 2, 3, 3]])})
    scipy.io.savemat(served / "setid.mat", {"trnid": np.array([[1, 2]]), "valid": np.array([[3, 4]]),
                                            "tstid": np.array([[5, 6]])})


def patch_flowers102(monkeypatch, url: str, served: Path, good: bool) -> None:
    files = {key: (name, md5(served / name)) for key, (name, _) in Flowers102._file_dict.items()}
    if not good:
        files["image"] = (files["image"][0], WRONG_MD5)
    monkeypatch.setattr(Flowers102, "_download_url_prefix", url)
    monkeypatch.setattr(Flowers102, "_file_dict", files)


def make_cifar10(served: Path) -> None:
    rng = np.random.default_rng(0)
    batch = lambda n: pickle.dumps({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),  # noqa: E731
                                    "labels": list(range(n))})
    members = {f"cifar-10-batches-py/data_batch_{i}": batch(2) for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = batch(3)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({"label_names": [f"class{i}" for i in range(10)]})
    write_tar(served / "cifar-10-python.tar.gz", members)
    (served / "members.pkl").write_bytes(pickle.dumps({k.split("/")[1]: hashlib.md5(v).hexdigest() for k, v in members.items()}))


def patch_cifar10(monkeypatch, url: str, served: Path, good: bool) -> None:
    sums = pickle.loads((served / "members.pkl").read_bytes())
    monkeypatch.setattr(CIFAR10, "url", url + "cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(served / "cifar-10-python.tar.gz") if good else WRONG_MD5)
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", CIFAR10.meta | {"md5": sums["batches.meta"]})


CASES = {
    "flowers": Case(Flowers17, make_flowers17, patch_flowers17,
                    lambda root: root / "oxford17flowers" / "jpg" / "image_0008.jpg", (6, 2)),
    "flowers102": Case(Flowers102Dataset, make_flowers102, patch_flowers102,
                       lambda root: root / "flowers-102" / "jpg" / "image_00006.jpg", (2, 2)),
    "cifar10": Case(Cifar10, make_cifar10, patch_cifar10,
                    lambda root: root / "cifar-10-batches-py" / "test_batch", (10, 3)),
}


@pytest.fixture(params=sorted(CASES))
def case(request, server) -> Case:
    chosen = CASES[request.param]
    chosen.make(server.dir)
    return chosen


def test_download_lands_in_the_data_root_and_is_reused(case, server, monkeypatch, tmp_path):
    case.patch(monkeypatch, server.url, server.dir, good=True)
    root = tmp_path / "data"
    dataset = case.dataset(root)
    train, test = dataset.images("train"), dataset.images("test")
    assert (len(train), len(test)) == case.counts
    assert case.landed(root).is_file()
    assert server.requests, "the archive was fetched over HTTP"
    assert len({ref.name for ref in train + test}) == sum(case.counts), "names are unique"
    assert decode(test[0], 8).shape == (8, 8, 3)
    assert all(ref.fingerprint for ref in train + test), "each ref identifies its content for the decode cache"

    fetched = len(server.requests)
    again = case.dataset(root)
    assert [(r.name, r.fingerprint) for r in again.images("train")] == [(r.name, r.fingerprint) for r in train]
    assert len(server.requests) == fetched, "a second call must use the local files"


def test_checksum_mismatch_is_refused(case, server, monkeypatch, tmp_path):
    case.patch(monkeypatch, server.url, server.dir, good=False)
    with pytest.raises(BenchError, match="md5 checksum mismatch") as caught:
        case.dataset(tmp_path / "data").images("train")
    assert "\n" not in str(caught.value)


def test_offline_gives_one_line_error_naming_where_files_go(case, server, monkeypatch, tmp_path):
    case.patch(monkeypatch, closed_port_url(), server.dir, good=True)
    root = tmp_path / "data"
    with pytest.raises(BenchError) as caught:
        case.dataset(root).images("test")
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot get" in message and "refused" in message.lower()
    assert str(case.landed(root).parent) in message, "says where to put the files"
    assert "http://127.0.0.1:" in message, "says what to download"


def test_a_failed_download_under_a_wrong_data_root_leaves_no_folder_behind(case, server, monkeypatch, tmp_path):
    case.patch(monkeypatch, closed_port_url(), server.dir, good=True)
    root = tmp_path / "typo" / "data"  # neither exists
    with pytest.raises(BenchError):
        case.dataset(root).images("test")
    assert not (tmp_path / "typo").exists()
    kept = tmp_path / "data"  # a folder the user made is never removed, nor what a download left in it
    (kept / "partial").mkdir(parents=True)
    with pytest.raises(BenchError):
        case.dataset(kept).images("test")
    assert (kept / "partial").is_dir()


def test_partly_unpacked_flowers_are_restored_from_the_archive(server, monkeypatch, tmp_path):
    make_flowers17(server.dir)
    patch_flowers17(monkeypatch, server.url, server.dir, good=True)
    folder = tmp_path / "data" / "oxford17flowers" / "jpg"
    folder.mkdir(parents=True)
    (folder / "image_0001.jpg").write_bytes(jpeg_bytes(1))  # an interrupted unpack left one file
    refs = Flowers17(tmp_path / "data").images("train")
    assert server.requests and all(Path(folder / r.name).is_file() for r in refs)


def test_flowers102_can_fold_val_into_training(server, monkeypatch, tmp_path):
    make_flowers102(server.dir)
    patch_flowers102(monkeypatch, server.url, server.dir, good=True)
    options = Flowers102Dataset.Options.from_dict({"train_with_val": "true"})
    dataset = Flowers102Dataset(tmp_path / "data", options)
    assert [r.name for r in dataset.images("train")] == [f"image_{n:05d}.jpg" for n in (1, 2, 3, 4)]
    assert dataset.cache_key() != Flowers102Dataset(tmp_path / "data").cache_key()


def test_flowers102_with_images_missing_after_unpacking_says_how_to_recover(server, monkeypatch, tmp_path):
    make_flowers102(server.dir)
    patch_flowers102(monkeypatch, server.url, server.dir, good=True)
    Flowers102Dataset(tmp_path / "data").images("test")
    (tmp_path / "data" / "flowers-102" / "jpg" / "image_00005.jpg").unlink()
    with pytest.raises(BenchError, match="1 Oxford-102 test images .* missing; delete .*jpg and run again"):
        Flowers102Dataset(tmp_path / "data").images("test")
    fetched = len(server.requests)
    shutil.rmtree(tmp_path / "data" / "flowers-102" / "jpg")  # the advice works, from the kept archive
    assert len(Flowers102Dataset(tmp_path / "data").images("test")) == 2 and len(server.requests) == fetched
