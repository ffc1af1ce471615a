"""Sample images: copied next to the pages (never inlined as base64) and laid out in grids.

Copies are named ``img/<board>/<sample stem>-<content hash>.png``: deterministic, safe whatever the
result.json says, and each distinct image is stored once (the gray input and ground truth of a
test image are the same file for every method and seed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.reports.runs import Run, as_dict, as_int, as_list, as_text
from bench.store import safe_name

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_sample(run: Run, relative) -> bytes | None:
    """The bytes of one sample PNG of ``run``; None when it is missing, not a PNG or outside the run folder."""
    relative = as_text(relative)
    if not relative:
        return None
    root = run.directory.resolve()
    source = (root / relative).resolve()
    if not source.is_relative_to(root) or not source.is_file():
        return None  # a result.json must not make the report copy files from elsewhere
    content = source.read_bytes()
    return content if content.startswith(PNG_SIGNATURE) else None


class ImageStore:
    def __init__(self, site: Path):
        self.site = site
        self.copied: dict[str, str] = {}  # content hash -> site-relative path

    def add(self, run: Run, relative, board_slug: str) -> str | None:
        """Copy one sample file of ``run``; None when it is missing, not a PNG or outside the run folder."""
        content = read_sample(run, relative)
        if content is None:
            return None
        digest = hashlib.sha256(content).hexdigest()[:12]
        if digest not in self.copied:
            stem = safe_name(PurePosixPath(as_text(relative)).name.removesuffix(".png"))
            target = f"img/{board_slug}/{stem}-{digest}.png"
            (self.site / target).parent.mkdir(parents=True, exist_ok=True)
            (self.site / target).write_bytes(content)
            self.copied[digest] = target
        return self.copied[digest]


@dataclass
class GridRow:
    name: str
    gray: str | None
    truth: str | None
    outputs: list[str | None]  # one per grid column


@dataclass
class Grid:
    columns: list[str]  # a method name, or "seed k" on a method's page
    rows: list[GridRow]


def _samples(run: Run) -> dict:
    """{sample key: sample} where the key (test-set index, else name) matches across methods and seeds."""
    out = {}
    for sample in as_list(run.raw.get("samples")):
        sample = as_dict(sample)
        index, name = as_int(sample.get("index")), as_text(sample.get("name"))
        if index is None and name is None:
            continue
        out[(0, index, "") if index is not None else (1, 0, name)] = sample
    return out


def sample_grid(columns: list[tuple[str, Run]], images: ImageStore, board_slug: str) -> Grid | None:
    """Rows = the same test images for every column: gray input | each column's output | truth."""
    samples = [(label, run, _samples(run)) for label, run in columns]
    samples = [entry for entry in samples if entry[2]]
    keys = sorted({key for _, _, found in samples for key in found})
    if not keys:
        return None
    rows = []
    for key in keys:
        found = [s[key] for _, _, s in samples if key in s]
        name = next((as_text(s.get("name")) for s in found if s.get("name")), None) or f"#{key[1]}"
        gray = next((p for p in (images.add(r, s[key].get("gray"), board_slug) for _, r, s in samples if key in s) if p), None)
        truth = next((p for p in (images.add(r, s[key].get("truth"), board_slug) for _, r, s in samples if key in s) if p), None)
        outputs = [images.add(run, found_samples[key].get("pred"), board_slug) if key in found_samples else None
                   for _, run, found_samples in samples]
        rows.append(GridRow(name, gray, truth, outputs))
    return Grid([label for label, _, _ in samples], rows)
