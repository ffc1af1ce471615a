"""Writing a study: the site raters open, and the design.json (the answer key) that stays out of it.

Nothing on the site says which method or which side a trial shows. Every image of every trial is
re-encoded as a plain RGB PNG with *stored* (uncompressed) zlib data and nothing but the IHDR, IDAT
and IEND chunks: no metadata, and a file's size depends only on the picture's width and height, so
the two pictures of a trial (always the same size) are files of exactly the same number of bytes.
(A compressed PNG gives the real photo away: a colorization is usually smoother, so its file is
smaller, and the browser's developer tools show every file's size.) Each picture is stored under a
random name of its own (the same real photo in two trials is two files), trial ids are random, and
the left/right order is the design's random one. The page loads only ``trials.js`` (ids and image
pairs); ``design.json`` sits beside ``site/``, so publishing ``site/`` publishes no key.
"""

from __future__ import annotations

import io
import json
import math
import random
import secrets
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

import bench
from bench.errors import BenchError
from bench.store.atomic import atomic_folder
from bench.reports.images import read_sample
from bench.reports.runs import Run, load_runs
from bench.reports.site import STATIC, _env, generated_date
from bench.reports.turing.design import (DESIGN_FILE, DESIGN_FORMAT, SITE_FOLDER, VERSION, VOTES_FORMAT, Arm, Trial,
                                        balanced_design, choose_arms, common_images,
                                        default_blocks)

PAGE_GLOBAL = "COLORBENCH_TURING"  # what trials.js defines (file:// pages cannot fetch JSON)
STATIC_FILES = ("turing.js", "turing.css")
DEFAULT_TITLE = "Which one is the real photo?"


class _Images:
    """Sample PNGs, each decoded once (the real photo of an image serves several trials)."""

    def __init__(self):
        self.decoded: dict[tuple[str, str], Image.Image] = {}

    def load(self, run: Run, relative: str) -> Image.Image:
        key = (str(run.directory), relative)
        if key not in self.decoded:
            content = read_sample(run, relative)
            if content is None:
                raise BenchError(f"{run.where}: sample {relative!r} is missing, not a PNG or outside the run folder")
            with Image.open(io.BytesIO(content)) as image:
                self.decoded[key] = image.convert("RGB")
        return self.decoded[key]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def stored_png(image: Image.Image) -> bytes:
    """An 8-bit RGB PNG of ``image`` whose size depends only on its width and height.

    Filter type 0 on every row and zlib level 0 (stored blocks): IHDR, one IDAT, IEND, no other chunk.
    """
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # each row: filter byte 0, then the pixels
    rows[:, 1:] = pixels.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0))
            + _chunk(b"IEND", b""))


def _write_png(image: Image.Image, folder: Path, taken: set[str]) -> str:
    """A fresh PNG under a random name: nothing but the pixels, its size set by width and height alone."""
    name = unique_token(taken, 8) + ".png"
    (folder / name).write_bytes(stored_png(image))
    return f"img/{name}"


def unique_token(taken: set[str], n_bytes: int) -> str:
    while True:
        token = secrets.token_hex(n_bytes)
        if token not in taken:
            taken.add(token)
            return token


def _prepare(out: Path, make: bool = True) -> None:
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file: give a new folder for the study")
    if out.is_dir() and any(out.iterdir()):
        raise BenchError(f"--out {out} is not empty: a study goes to a new folder (votes are tied to its study id, "
                         "so an existing study is never overwritten)")
    if make:
        (out / SITE_FOLDER / "img").mkdir(parents=True, exist_ok=True)


def _trial_images(arm: Arm, trial: Trial, images: _Images) -> tuple[Image.Image, Image.Image]:
    """(real photo, the other image: this arm's colorization, or the gray input in a catch trial)."""
    sample = arm.samples[trial.image]
    real = images.load(arm.run, sample["truth"])
    other = images.load(arm.run, sample["gray" if trial.kind == "catch" else "pred"])
    if real.size != other.size:  # a size difference would give the real side away
        raise BenchError(f"{arm.run.where}: sample {trial.image!r}: its images differ in size ({real.size[0]}x"
                         f"{real.size[1]} vs {other.size[0]}x{other.size[1]})")
    return real, other


def build_study(runs_dirs: list[Path], out: Path, **options) -> dict:
    """Build a study (``_build_study``: ``options`` are its keywords) into the new folder ``out``, whole or not
    at all: it is written in a folder beside ``out`` and moved there at the end, so a build that fails, is
    killed or runs out of disk space leaves nothing half-written (and never touches an existing study)."""
    out = Path(out)
    _prepare(out, make=False)
    with atomic_folder(out, replace=False, what="study") as staging:
        return _build_study(runs_dirs, staging, **options)


def _build_study(runs_dirs: list[Path], out: Path, *, methods: list[str] | None = None, images: int | None = None,
                seed: int = 0, catch: int = 5, time_limit: float = 0.0, blocks: int | None = None,
                allow_repeats: bool = False, title: str | None = None) -> dict:
    """Build a study from the runs under ``runs_dirs`` into the new folder ``out``; returns design.json's content.

    ``blocks``: None for one per method (each rater judges each image once); fewer only with ``allow_repeats``.
    """
    if not math.isfinite(time_limit) or time_limit < 0:
        raise BenchError(f"--time-limit {time_limit}: seconds per trial, 0 for none")
    title = (title or "").strip() or DEFAULT_TITLE
    runs, _ = load_runs([Path(d) for d in runs_dirs])
    arms = choose_arms(runs, methods)
    rng = random.Random(seed)
    names = common_images(arms, images, rng)
    spare = [n for n in common_images(arms, None, rng) if n not in names]  # for catch trials: never judged
    blocks = default_blocks(len(arms)) if blocks is None else blocks
    design = balanced_design(len(arms), names, blocks=blocks, catch=catch, rng=rng, allow_repeats=allow_repeats,
                             spare=spare)
    samples = _Images()  # every picture is read and checked before anything is written
    pictures = [[_trial_images(arms[trial.source], trial, samples) for trial in trials] for trials in design]
    out = Path(out)
    _prepare(out)
    site = out / SITE_FOLDER
    names_taken: set[str] = set()
    trial_ids: set[str] = set()
    page_blocks, key = [], []
    for trials, block_pictures in zip(design, pictures):
        page_trials = []
        for position, (trial, (real, other)) in enumerate(zip(trials, block_pictures), start=1):
            left, right = (real, other) if trial.real == "left" else (other, real)
            shown = {"id": unique_token(trial_ids, 5), "left": _write_png(left, site / "img", names_taken),
                     "right": _write_png(right, site / "img", names_taken)}
            page_trials.append(shown)
            key.append({**shown, "block": trial.block, "position": position, "kind": trial.kind, "arm": trial.arm,
                        "image": trial.image, "source_arm": trial.source, "real": trial.real})
        page_blocks.append(page_trials)
    study = {
        "format": DESIGN_FORMAT, "version": VERSION, "study_id": secrets.token_hex(6), "title": title,
        "created": generated_date(), "generator": f"colorbench {bench.__version__}", "seed": seed,
        "time_limit_s": time_limit, "blocks": blocks, "allow_repeats": allow_repeats, "catch_per_block": catch,
        "runs_dirs": [str(Path(d).resolve()) for d in runs_dirs],
        "arms": [dict(arm.to_dict(), arm=k) for k, arm in enumerate(arms)],
        "images": names, "trials": key,
    }
    page = {"study_id": study["study_id"], "title": title, "time_limit_s": time_limit,
            "format": VOTES_FORMAT, "version": VERSION, "blocks": page_blocks}
    (site / "trials.js").write_text(
        "// The trials of this study: ids and image pairs only (which side is real is not here).\n"
        f"window.{PAGE_GLOBAL} = {json.dumps(page, ensure_ascii=True, indent=1)};\n")
    (site / "index.html").write_text(_env().get_template("turing.html").render(
        title=title, generator=study["generator"], time_limit=time_limit,
        trials_per_block=sorted({len(t) for t in page_blocks})))
    (site / "static").mkdir()
    for name in STATIC_FILES:
        shutil.copyfile(STATIC / name, site / "static" / name)
    (out / DESIGN_FILE).write_text(json.dumps(study, indent=1, ensure_ascii=False) + "\n")
    return study
