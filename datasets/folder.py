"""``folder``: any directory of the user's own images (``--dataset folder:PATH``).

Images are found recursively by suffix (hidden files and folders are ignored; a name that is no
file to read, such as a symbolic link loop or a broken link, is skipped with a one-line reason). The split:

* if PATH holds both a ``train/`` and a ``test/`` subfolder, those are the splits (images elsewhere
  are ignored, and so is ``test_fraction``);
* otherwise each image goes to test when a hash of its relative path falls below
  ``test_fraction``. That split does not depend on the order files are listed in, and adding or
  removing files never moves the others from one split to the other (only a folder so small that
  one split would be empty gets its lowest- or highest-hash image moved).

Image names are the paths relative to PATH. The cache key holds the resolved path and a digest of
every file's name, size and modification time, so a changed folder is decoded afresh.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bench.api import BenchError, Dataset, ImageRef, Options, hookimpl, log, safe_name

SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"})
SPLIT_FOLDERS = ("train", "test")


@dataclass
class FolderOptions(Options):
    path: str = ""
    test_fraction: float = 0.2

    def validate(self) -> None:
        if not self.path:
            raise BenchError("dataset folder needs a path: use --dataset folder:PATH (or --dataset-option path=PATH)")
        if not 0 < self.test_fraction < 1:
            raise BenchError(f"option test_fraction must be between 0 and 1 (exclusive), got {self.test_fraction}")
        _check_folder(Path(self.path).expanduser())


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise BenchError(f"dataset folder {folder} does not exist; give a directory of images (--dataset folder:PATH)")
    if not folder.is_dir():
        raise BenchError(f"dataset folder {folder} is not a directory; give a directory of images (--dataset folder:PATH)")


def find_images(folder: Path, skipped: list | None = None) -> list[Path]:
    """Image files below ``folder`` (recursively, skipping hidden entries), sorted.

    A name that is no file to read -- a symlink loop (a link to itself), a broken link, a folder with an
    image suffix -- is left out, with (path, reason) appended to ``skipped`` when given.
    """
    found = []
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            path = Path(directory, name)
            try:
                usable, reason = stat.S_ISREG(os.stat(path).st_mode), "not a regular file"  # follows links
            except OSError as error:  # a link loop, a broken link, no permission
                usable = False
                reason = {errno.ELOOP: "a symbolic link loop", errno.ENOENT: "a broken symbolic link"}.get(
                    error.errno, (error.strerror or str(error)).lower())
            if usable:
                found.append(path)
            elif skipped is not None:
                skipped.append((path, reason))
    return sorted(found)


def hash_fraction(name: str) -> float:
    """A number in [0, 1) fixed by ``name`` alone."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64


def hash_split(names: list[str], test_fraction: float) -> dict[str, list[str]]:
    test = {n for n in names if hash_fraction(n) < test_fraction}
    if len(names) >= 2 and not test:  # tiny folders: keep both splits non-empty
        test = {min(names, key=hash_fraction)}
    elif len(names) >= 2 and len(test) == len(names):
        test.remove(max(names, key=hash_fraction))
    return {"train": [n for n in names if n not in test], "test": [n for n in names if n in test]}


class FolderDataset(Dataset):
    name = "folder"
    description = "Your own images: --dataset folder:PATH; train/ and test/ subfolders, or a hashed split"
    default_size = 256
    Options = FolderOptions

    @property
    def folder(self) -> Path:
        return Path(self.options.path).expanduser().resolve()

    def _has_split_folders(self) -> bool:
        return all((self.folder / s).is_dir() for s in SPLIT_FOLDERS)

    def _files(self) -> list[Path]:
        self.options.validate()  # also when built without from_dict
        skipped: list = []
        files = find_images(self.folder, skipped)
        said = self.__dict__.setdefault("_skipped_said", set())
        for path, reason in skipped:  # each said once, however often the files are listed
            if path not in said:
                said.add(path)
                log(f"{self.name}: skipped {path.relative_to(self.folder).as_posix()}: {reason}")
        if not files:
            raise BenchError(
                f"no images ({', '.join(sorted(SUFFIXES))}) found under {self.folder}; put your images there"
            )
        return files

    def _splits(self) -> dict[str, list[str]]:
        names = [f.relative_to(self.folder).as_posix() for f in self._files()]
        if len(names) < 2:
            raise BenchError(f"{self.folder} holds a single image; a train and a test split need at least 2")
        if self._has_split_folders():
            splits = {s: [n for n in names if n.startswith(f"{s}/")] for s in SPLIT_FOLDERS}
            for split, chosen in splits.items():
                if not chosen:
                    raise BenchError(f"{self.folder / split} holds no images; add some, or remove train/ and test/ to split by hash")
            return splits
        return hash_split(names, self.options.test_fraction)

    def images(self, split: str):
        return [ImageRef.from_path(self.folder / name, name) for name in self._splits()[split]]

    def cache_key(self) -> str:
        files = self._files()
        digest = hashlib.sha256(f"{self.folder}\n{self.options.test_fraction}\n".encode())
        for path in files:
            stat = path.stat()
            digest.update(f"{path.relative_to(self.folder).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        return f"folder-{safe_name(self.folder.name)[:40]}-{digest.hexdigest()[:20]}"

    def info(self) -> dict:
        rule = ("train/ and test/ subfolders" if self._has_split_folders()
                else f"hash of the relative path: {self.options.test_fraction:g} test")
        return super().info() | {"source": str(self.folder), "split": rule}


@hookimpl
def register_datasets(register):
    register(FolderDataset)
