"""Helpers the tests share: finding a run's folders, writing small photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.store.identity import safe_name


def find_runs(out: Path, dataset: str, method: str, seed: int | None = None) -> list[Path]:
    """The run folders of ``method`` on ``dataset`` under ``out`` (every config; one seed or all)."""
    pattern = f"*/seed{seed}" if seed is not None else "*/seed*"
    return sorted(p for p in (Path(out) / safe_name(dataset) / safe_name(method)).glob(pattern) if p.is_dir())


def photo(seed: int, height: int = 24, width: int = 40) -> np.ndarray:
    """A smooth colour image (JPEG keeps it well), different for each seed."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = seed / 7
    return (np.stack([x, (y + phase) % 1, 1 - (x + y) / 2], -1) * 200 + 30).astype(np.uint8)


def write_photos(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        Image.fromarray(photo(seed)).save(folder / name, quality=95)
