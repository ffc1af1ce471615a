"""``coco``: photographs of COCO 2017 (Lin et al. 2014), the colorization reports' larger benchmark.

The default is the source report's protocol: a fixed random subset of 10,000 colour images of
``train2017``, 8,000 for training and 2,000 for testing. ``subset=N`` takes N (a fifth of them,
rounded, to test); ``subset_seed`` picks another fixed subset; ``full=true`` trains on every
``train2017`` image and tests on ``val2017`` (5,000).

The subset holds colour images only, without decoding 118k photos: the file names are put in an
order drawn from ``subset_seed`` and walked in that order, each candidate decoded with the data
pipeline's own colour test (``bench.data.decode``), until N colour images are found -- grayscale
and unreadable ones are skipped and counted. The first 80 % found train, the rest test. The choice
is stored in the cache (``COLORBENCH_CACHE``/coco) with those counts, keyed by the list of files,
and recorded in every result (``info()``); it is made again only when the files change.

Expected under the data root as ``coco/train2017/*.jpg`` (and ``coco/val2017/*.jpg`` for
``full=true``). When absent they are downloaded from the official URLs with a progress bar and an
md5 check, unless ``COLORBENCH_OFFLINE=1``; offline, a one-line error says where to put them. The
training zip is 18 GB (and as much again while it is unpacked).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.api import BenchError, Dataset, ImageRef, Options, atomic_write_text, cache_dir, decode, hookimpl
from bench.datasets.downloads import fetching

FOLDER = "coco"
ZIPS = {  # split folder -> (official URL, md5 of the zip)
    "train2017": ("http://images.cocodataset.org/zips/train2017.zip", "cced6f7f71b7629ddf16f17bbcfab6b2"),
    "val2017": ("http://images.cocodataset.org/zips/val2017.zip", "442b8da7639aecaf257c1dceb8ba8c80"),
}
SUBSET, TEST_FRACTION = 10_000, 0.2
SELECTION_VERSION = 1  # bump when the way a subset is chosen changes
CHUNK = 256  # candidates decoded at once while choosing a subset
DECODE_SIDE = 16  # the colour test is taken before resizing; a tiny resize keeps the walk fast


@dataclass
class CocoOptions(Options):
    subset: int = SUBSET  # colour images of train2017, 80 % train / 20 % test
    subset_seed: int = 0  # which fixed subset
    full: bool = False  # every train2017 image trains, val2017 tests (subset ignored)

    def validate(self) -> None:
        if self.full and self.subset != SUBSET:
            raise BenchError(f"coco: subset={self.subset} and full=true exclude each other; give one")
        if self.subset < 2:
            raise BenchError(f"coco: option subset must be at least 2 (a train and a test image), got {self.subset}")
        if self.subset_seed < 0:
            raise BenchError(f"coco: option subset_seed must be 0 or more, got {self.subset_seed}")


def split_sizes(subset: int) -> tuple[int, int]:
    """(train, test) of a subset: a fifth tests (10,000 -> 8,000 / 2,000), at least one image each."""
    test = min(subset - 1, max(1, round(subset * TEST_FRACTION)))
    return subset - test, test


def jpeg_names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.name.lower().endswith(".jpg")
                  and not entry.name.startswith(".")) if folder.is_dir() else []


def download(root: Path, split: str) -> None:
    """Fetch the official zip of ``split`` and unpack it into ``root/coco`` (-> ``coco/<split>/``)."""
    url, md5 = ZIPS[split]
    target = root / FOLDER
    place = f"{target / split}/*.jpg exist"
    if os.environ.get("COLORBENCH_OFFLINE", "") not in ("", "0"):
        raise BenchError(f"COCO {split} not found (downloads disabled by COLORBENCH_OFFLINE): download {url} and "
                         f"unpack it so that {place} (or point --data-root / env COLORBENCH_DATA at a folder that holds it)")
    from torchvision.datasets.utils import download_and_extract_archive  # after the offline check: slow to import

    with fetching(f"COCO {split}", url, place, folder=target):
        try:
            download_and_extract_archive(url, download_root=str(target), md5=md5, remove_finished=True)
        except zipfile.BadZipFile as error:  # a damaged archive, said the way other download failures are
            raise OSError(f"bad zip archive: {error}") from None


def _choose(folder: Path, names: list[str], count: int, seed: int) -> dict:
    """Walk ``names`` in the order drawn from ``seed``; keep the first ``count`` colour images."""
    order = list(names)
    random.Random(seed).shuffle(order)
    chosen, skipped, examined = [], {}, 0
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        for first in range(0, len(order), CHUNK):
            candidates = order[first : first + CHUNK]
            verdicts = pool.map(lambda name: decode(ImageRef.from_path(folder / name), DECODE_SIDE), candidates)
            for name, verdict in zip(candidates, verdicts):
                examined += 1
                if isinstance(verdict, str):
                    skipped[verdict] = skipped.get(verdict, 0) + 1
                    continue
                chosen.append(name)
                if len(chosen) == count:
                    return {"chosen": chosen, "examined": examined, "skipped": skipped}
    raise BenchError(f"coco: subset={count} asks for more colour images than {folder} holds "
                     f"({len(chosen)} of {len(names)}; {', '.join(f'{n} {r}' for r, n in skipped.items()) or 'none skipped'})")


class Coco(Dataset):
    name = "coco"
    description = ("COCO 2017 photos: a fixed random 10,000 colour images of train2017, 8,000 train / 2,000 test "
                   "(subset=N, subset_seed=S); full=true: train2017 / val2017")
    default_size = 256
    Options = CocoOptions

    def _folder(self, split: str) -> Path:
        folder = self.root / FOLDER / split
        if not jpeg_names(folder):
            download(self.root, split)
            if not jpeg_names(folder):
                raise BenchError(f"no COCO images in {folder} even after unpacking {ZIPS[split][0]}; "
                                 "delete that folder and run again")
        return folder

    def _selection_path(self, names: list[str]) -> Path:
        pool = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
        return (cache_dir() / FOLDER
                / f"subset-{self.options.subset}-seed{self.options.subset_seed}-v{SELECTION_VERSION}-{pool}.json")

    def selection(self) -> dict:
        """The subset: {"train", "test", "examined", "skipped", ...}, chosen once and cached."""
        folder = self._folder("train2017")
        names = jpeg_names(folder)
        path = self._selection_path(names)
        try:
            stored = json.loads(path.read_text())
            if stored.get("version") == SELECTION_VERSION and stored.get("pool_files") == len(names):
                return stored
        except (OSError, ValueError):
            pass  # absent or damaged: chosen again (the same choice)
        train_count, _ = split_sizes(self.options.subset)
        found = _choose(folder, names, self.options.subset, self.options.subset_seed)
        chosen = found.pop("chosen")
        selection = {"version": SELECTION_VERSION, "subset": self.options.subset, "seed": self.options.subset_seed,
                     "pool_files": len(names), **found,
                     "train": sorted(chosen[:train_count]), "test": sorted(chosen[train_count:])}
        try:
            atomic_write_text(path, json.dumps(selection))
        except OSError:  # a cache that cannot be written only costs the walk again
            pass
        return selection

    def images(self, split: str):
        if self.options.full:
            folder = self._folder("train2017" if split == "train" else "val2017")
            return [ImageRef.from_path(folder / name) for name in jpeg_names(folder)]
        folder = self._folder("train2017")
        return [ImageRef.from_path(folder / name) for name in self.selection()[split]]

    def info(self) -> dict:
        info = super().info() | {
            "source": ", ".join(url for url, _ in ZIPS.values()),
            "citation": "Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014",
        }
        if self.options.full:
            return info | {"split": "train2017 trains, val2017 tests (grayscale images dropped when decoded)"}
        selection = self.selection()
        return info | {
            "split": (f"a fixed random {self.options.subset} colour images of train2017 (seed "
                      f"{self.options.subset_seed}): {len(selection['train'])} train / {len(selection['test'])} test"),
            "subset_seed": self.options.subset_seed,
            "subset_walk": {"train2017_files": selection["pool_files"], "examined": selection["examined"],
                            "skipped": selection["skipped"]},
        }


@hookimpl
def register_datasets(register):
    register(Coco)
