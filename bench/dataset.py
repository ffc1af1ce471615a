"""The interface of dataset plugins.

A dataset lists the images of its ``train`` and ``test`` splits as :class:`ImageRef` objects; it
does not decode them. ``bench.data`` decodes every image once, drops grayscale and unreadable ones,
resizes to the run's size and caches the result as a uint8 tensor keyed by ``cache_key()`` + size.

Each ref may carry a ``fingerprint`` that changes whenever its content does (a file's size and
modification time, a digest of embedded data, a published checksum). The cache entry records the
names and fingerprints it was built from and is decoded afresh when they differ; a ref without a
fingerprint is recognised by its name alone.

Once both splits are loaded, ``bench.duplicates`` compares every test image with the training images
and records what it found in ``duplicate_check`` (part of ``info()``). A dataset whose options hold
``drop_duplicates`` (``flowers``: true by default) has those test images dropped; others are warned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

from PIL import Image

from bench.options import Options


def file_fingerprint(path: Path) -> str:
    """A file's size and modification time: cheap, and changed by any rewrite of the file."""
    try:
        stat = Path(path).stat()
    except OSError:
        return "missing"  # opening it then fails and the image counts as unreadable
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@dataclass(frozen=True)
class ImageRef:
    """One image of a split: a stable name, a way to open it (lazily), and what identifies its content."""

    name: str
    open: Callable[[], Image.Image]
    fingerprint: str | None = None

    @classmethod
    def from_path(cls, path: Path, name: str | None = None) -> "ImageRef":
        return cls(name or Path(path).name, lambda: Image.open(path), file_fingerprint(path))


class Dataset:
    """Base class of datasets. ``root`` is the data root (``--data-root`` / ``COLORBENCH_DATA``)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    default_size: ClassVar[int] = 256
    Options: ClassVar[type[Options]] = Options
    # Set by bench.duplicates.check_duplicates when both splits are loaded; recorded by info().
    duplicate_check: dict | None = None

    def __init__(self, root: Path, options: Options | None = None):
        self.root = Path(root)
        self.options = options if options is not None else self.Options()

    def images(self, split: str) -> Sequence[ImageRef]:
        """The images of ``split`` ("train" or "test"), in a fixed order. May download."""
        raise NotImplementedError

    def cache_key(self) -> str:
        """Identifies the content for the decode cache; include any option that changes it.

        ``drop_duplicates`` is left out: splits are cached whole and duplicates dropped after loading
        (the test set's fingerprint names what was dropped).
        """
        options = {k: v for k, v in self.options.to_dict().items() if k != "drop_duplicates"}
        return self.name + "".join(f"-{k}={v}" for k, v in sorted(options.items()))

    def info(self) -> dict:
        """Provenance for result.json and the report (source, split rule, licence note)."""
        info = {"name": self.name, "description": self.description, "options": self.options.to_dict()}
        if self.duplicate_check is not None:
            info["duplicates"] = self.duplicate_check
        return info
