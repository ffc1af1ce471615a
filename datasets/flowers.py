"""``flowers``: the Oxford 17 Category Flower Dataset (Nilsback & Zisserman, 2006).

The dataset of the CycleGAN colorization study (Tanjim & Liu). 17 classes x 80 images stored in
index order (image_0001-0080 are class 1, ...); each class is split into its first 60 images for
training and its last 20 for testing: 1020 / 340. 16 of those test images duplicate training images
(13 copies, 3 near-copies; 11 of class 6's 20): with ``drop_duplicates=true`` (the default) the
duplicate check of ``bench.duplicates`` drops them from the test split (340 -> 324) and every result
records which; ``drop_duplicates=false`` keeps the published split.

Expected under the data root as ``oxford17flowers/jpg/image_0001.jpg ... image_1360.jpg``; when
any of them is missing, the official tarball is downloaded (md5-checked, with a progress bar) and
unpacked over the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.api import BenchError, Dataset, ImageRef, Options, hookimpl
from bench.datasets.downloads import fetching

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


def image_path(folder: Path, number: int) -> Path:
    return folder / f"image_{number:04d}.jpg"


def download(root: Path) -> None:
    """Fetch the official tarball and unpack it into ``root/oxford17flowers`` (-> ``jpg/``)."""
    from torchvision.datasets.utils import download_and_extract_archive

    target = root / FOLDER
    with fetching("Oxford-17 flowers", URL, f"{target / 'jpg'}/image_0001.jpg … image_1360.jpg exist", folder=target):
        download_and_extract_archive(URL, download_root=str(target), md5=MD5, remove_finished=True)


@dataclass
class FlowersOptions(Options):
    # Drop test images that duplicate a training image (bench.duplicates); false: the published split.
    drop_duplicates: bool = True


class Flowers17(Dataset):
    name = "flowers"
    description = ("Oxford 17 Category Flowers: 17 classes x 80; per class first 60 train / last 20 test (1020/340), "
                   "by default without the test images that duplicate training images")
    default_size = 256
    Options = FlowersOptions

    @property
    def folder(self) -> Path:
        return self.root / FOLDER / "jpg"

    def _missing(self) -> list[int]:
        return [n for n in range(1, CLASSES * PER_CLASS + 1) if not image_path(self.folder, n).is_file()]

    def images(self, split: str):
        if self._missing():  # absent or partly unpacked: the tarball restores every file
            download(self.root)
            missing = self._missing()
            if missing:
                raise BenchError(
                    f"{len(missing)} of {CLASSES * PER_CLASS} Oxford-17 images (e.g. {image_path(self.folder, missing[0]).name}) "
                    f"are missing from {self.folder} even after unpacking {URL}; delete that folder and run again"
                )
        return [ImageRef.from_path(image_path(self.folder, n)) for n in image_numbers(split)]

    def info(self) -> dict:
        return super().info() | {
            "source": URL,
            "split": "per class: first 60 train, last 20 test"
                     + ("; test images that duplicate training images dropped" if self.options.drop_duplicates else ""),
            "citation": "Nilsback & Zisserman, A Visual Vocabulary for Flower Classification, CVPR 2006",
        }


@hookimpl
def register_datasets(register):
    register(Flowers17)
