"""The interface of dataset plugins.

A dataset lists the images of its ``train`` and ``test`` splits as :class:`ImageRef` objects; it
does not decode them. ``bench.data`` decodes every image once, drops grayscale and unreadable ones,
resizes to the run's size and caches the result as a uint8 tensor keyed by ``cache_key()`` + size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

from PIL import Image

from bench.options import Options

@dataclass(frozen=True)
class ImageRef:
    """One image of a split: a stable name and a way to open it (lazily)."""

    name: str
    open: Callable[[], Image.Image]

    @classmethod
    def from_path(cls, path: Path, name: str | None = None) -> "ImageRef":
        return cls(name or Path(path).name, lambda: Image.open(path))


class Dataset:
    """Base class of datasets. ``root`` is the data root (``--data-root`` / ``COLORBENCH_DATA``)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    default_size: ClassVar[int] = 256
    Options: ClassVar[type[Options]] = Options

    def __init__(self, root: Path, options: Options | None = None):
        self.root = Path(root)
        self.options = options if options is not None else self.Options()

    def images(self, split: str) -> Sequence[ImageRef]:
        """The images of ``split`` ("train" or "test"), in a fixed order. May download."""
        raise NotImplementedError

    def cache_key(self) -> str:
        """Identifies the content for the decode cache; include any option that changes it."""
        options = self.options.to_dict()
        return self.name + "".join(f"-{k}={v}" for k, v in sorted(options.items()))

    def info(self) -> dict:
        """Provenance for result.json and the report (source, split rule, licence note)."""
        return {"name": self.name, "description": self.description, "options": self.options.to_dict()}
