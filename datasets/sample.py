"""``sample``: an embedded default that needs no network and no files.

Crops of the colour photographs that scikit-image ships inside its package (astronaut, coffee,
cat, rocket, Hubble deep field, retina, immunohistochemistry). Train crops come from the left 70 %
of each photo and test crops from the right 30 %, so no test pixel is seen in training. Each crop's
fingerprint is a digest of its photo plus where it was cut, so a changed photo (another
scikit-image release) is decoded afresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench.api import Dataset, ImageRef, Options, hookimpl, positive

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
TRAIN_FRACTION = 0.7


@dataclass
class SampleOptions(Options):
    train_per_photo: int = 24
    test_per_photo: int = 8

    def validate(self) -> None:
        positive("train_per_photo", self.train_per_photo)
        positive("test_per_photo", self.test_per_photo)


def _crop_boxes(height: int, x0: int, x1: int, count: int, rng: np.random.RandomState):
    """(top, left, side) of ``count`` square crops between columns x0 and x1."""
    width = x1 - x0
    for _ in range(count):
        side = int(rng.uniform(0.3, 0.6) * height)
        side = max(16, min(side, width, height))
        top = rng.randint(0, height - side + 1)
        left = x0 + rng.randint(0, width - side + 1)
        yield top, left, side


class SampleDataset(Dataset):
    name = "sample"
    description = "Crops of scikit-image's bundled colour photos; offline, tiny, for demos and tests"
    default_size = 64
    Options = SampleOptions

    def images(self, split: str):
        from skimage import data

        refs = []
        for index, photo_name in enumerate(PHOTOS):
            photo = np.ascontiguousarray(getattr(data, photo_name)()[..., :3])
            photo_digest = hashlib.sha256(photo.tobytes()).hexdigest()[:16]
            height, width = photo.shape[:2]
            cut = int(width * TRAIN_FRACTION)
            # Fixed seeds: the dataset is the same everywhere. One generator per split, so the test
            # crops stay the same whatever train_per_photo is.
            if split == "train":
                boxes = _crop_boxes(height, 0, cut, self.options.train_per_photo, np.random.RandomState(index))
            else:
                boxes = _crop_boxes(height, cut, width, self.options.test_per_photo, np.random.RandomState(100 + index))
            for i, (top, left, side) in enumerate(boxes):
                crop = photo[top : top + side, left : left + side]
                refs.append(ImageRef(f"{photo_name}-{i:02d}", lambda c=crop: Image.fromarray(np.ascontiguousarray(c)),
                                     f"{photo_digest}:{top},{left},{side}"))
        return refs

    def info(self) -> dict:
        return super().info() | {"source": "scikit-image bundled photos", "split": "left 70 % train / right 30 % test crops"}


@hookimpl
def register_datasets(register):
    register(SampleDataset)
