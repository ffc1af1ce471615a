"""``flowers``: the Oxford 17 Category Flower Dataset (Nilsback & Zisserman, 2006).

The dataset of the CycleGAN colorization study (Tanjim & Liu). 17 classes x 80 images stored in
index order (image_0001-0080 are class 1, ...); each class is split into its first 60 images for
training and its last 20 for testing: 1020 / 340.

Expected under the data root as ``oxford17flowers/jpg/image_0001.jpg ... image_1360.jpg``; when
absent, the official tarball is downloaded (md5-checked) with a progress bar.
"""

from __future__ import annotations

from pathlib import Path

from bench.api import BenchError, Dataset, ImageRef, hookimpl

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/17flowers.tgz"
MD5 = "b59a65d8d1a99cd66944d474e1289eab"
FOLDER = "oxford17flowers"
CLASSES, PER_CLASS, TRAIN_PER_CLASS = 17, 80, 60


def image_numbers(split: str) -> list[int]:
    """1-based image numbers of a split, class by class."""
    numbers = []
    for c in range(CLASSES):
        first = c * PER_CLASS + 1
        chosen = range(first, first + TRAIN_PER_CLASS) if split == "train" else range(first + TRAIN_PER_CLASS, first + PER_CLASS)
        numbers.extend(chosen)
    return numbers


def download(root: Path, url: str = URL, md5: str = MD5) -> None:
    """Fetch and unpack the official tarball into ``root/oxford17flowers`` (-> ``jpg/``)."""
    from torchvision.datasets.utils import download_and_extract_archive

    target = root / FOLDER
    try:
        download_and_extract_archive(url, download_root=str(target), md5=md5, remove_finished=True)
    except (OSError, RuntimeError) as error:  # offline, HTTP error, or md5 mismatch
        reason = getattr(error, "reason", None) or error
        raise BenchError(
            f"cannot get Oxford-17 flowers ({reason}): download {url} and unpack it so that "
            f"{target / 'jpg'}/image_0001.jpg … image_1360.jpg exist, or point --data-root "
            f"(env COLORBENCH_DATA) at a folder holding {FOLDER}/jpg/"
        ) from None


class Flowers17(Dataset):
    name = "flowers"
    description = "Oxford 17 Category Flowers: 17 classes x 80; per class first 60 train / last 20 test (1020/340)"
    default_size = 256

    @property
    def folder(self) -> Path:
        return self.root / FOLDER / "jpg"

    def images(self, split: str):
        if not any(self.folder.glob("image_*.jpg")):
            download(self.root)
        return [ImageRef.from_path(self.folder / f"image_{n:04d}.jpg") for n in image_numbers(split)]

    def info(self) -> dict:
        return super().info() | {
            "source": URL,
            "split": "per class: first 60 train, last 20 test",
            "citation": "Nilsback & Zisserman, A Visual Vocabulary for Flower Classification, CVPR 2006",
        }


@hookimpl
def register_datasets(register):
    register(Flowers17)
