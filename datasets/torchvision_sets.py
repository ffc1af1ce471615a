"""Datasets that torchvision knows how to download: ``flowers102`` and ``cifar10``.

Both live under the data root in torchvision's own layout (``flowers-102/``,
``cifar-10-batches-py/``), so a folder already filled by torchvision is reused as is. When absent,
torchvision downloads them (progress bar, md5 check); offline, the error says what to fetch and
where to put it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from bench.api import BenchError, Dataset, ImageRef, Options, hookimpl
from bench.datasets.downloads import fetching


@dataclass
class Flowers102Options(Options):
    # Official splits: train 1020 (10 per class), val 1020, test 6149. By default only the official
    # train split trains (the size of Oxford-17's); train_with_val=true adds val for 2040 images.
    train_with_val: bool = False


class Flowers102(Dataset):
    name = "flowers102"
    description = "Oxford 102 Category Flowers (torchvision), official splits: train 1020 / test 6149"
    default_size = 256
    Options = Flowers102Options

    def images(self, split: str):
        from torchvision.datasets import Flowers102 as Official

        base = self.root / "flowers-102"
        place = (f"{base}/jpg/image_00001.jpg … exist, with {Official._file_dict['label'][0]} and "
                 f"{Official._file_dict['setid'][0]} from {Official._download_url_prefix} in {base}/")
        parts = ["train", "val"] if split == "train" and self.options.train_with_val else [split]
        paths = []
        for part in parts:
            with fetching("Oxford-102 flowers", Official._download_url_prefix + Official._file_dict["image"][0], place,
                          folder=base):
                paths += Official(str(self.root), split=part, download=True)._image_files
        missing = [p for p in paths if not p.is_file()]
        if missing:  # torchvision only checks that jpg/ exists, not that it was fully unpacked
            raise BenchError(
                f"{len(missing)} Oxford-102 {split} images (e.g. {missing[0]}) are missing; "
                f"delete {base / 'jpg'} and run again to unpack the archive afresh"
            )
        return [ImageRef.from_path(p) for p in paths]

    def info(self) -> dict:
        train = "train+val (2040)" if self.options.train_with_val else "train (1020)"
        return super().info() | {
            "source": "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ via torchvision.datasets.Flowers102",
            "split": f"official: {train} for training, test (6149) for testing",
            "citation": "Nilsback & Zisserman, Automated Flower Classification over a Large Number of Classes, ICVGIP 2008",
        }


class Cifar10(Dataset):
    name = "cifar10"
    description = "CIFAR-10 (torchvision), 32x32, official splits: train 50000 / test 10000"
    default_size = 32

    def images(self, split: str):
        from torchvision.datasets import CIFAR10

        place = f"{self.root / CIFAR10.base_folder}/data_batch_1 … test_batch and batches.meta exist"
        with fetching("CIFAR-10", CIFAR10.url, place, folder=self.root / CIFAR10.base_folder):
            official = CIFAR10(str(self.root), train=split == "train", download=True)
        data = official.data  # (N, 32, 32, 3) uint8
        # torchvision has checked the batch files against these md5s: they pin the content.
        fingerprint = ",".join(md5 for _, md5 in (official.train_list if official.train else official.test_list))
        # Arrays become PIL images only when decoded.
        return [ImageRef(f"cifar10-{split}-{i:05d}", lambda i=i: Image.fromarray(data[i]), fingerprint)
                for i in range(len(data))]

    def info(self) -> dict:
        return super().info() | {
            "source": "https://www.cs.toronto.edu/~kriz/cifar.html via torchvision.datasets.CIFAR10",
            "split": "official: train 50000, test 10000",
            "citation": "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
        }


@hookimpl
def register_datasets(register):
    register(Flowers102)
    register(Cifar10)
