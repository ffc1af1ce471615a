"""Every pretrained file the suite uses, and the one place that finds, checks and fetches them.

Lookup order for each file:
  1. the weights directory: ``--weights-dir`` or env ``COLORBENCH_WEIGHTS``;
  2. the torch hub cache (``$TORCH_HOME/hub/checkpoints``, where torchvision and timm keep them);
  3. a download from the official URL (with a progress bar) into the torch hub cache,
     unless offline (env ``COLORBENCH_OFFLINE=1``) or the network does not answer.

A file whose sha256 does not match is refused. For torchvision/pytorch-fid files the published
check is the sha256 prefix in the file name (torch.hub's own ``check_hash`` convention); files we
publish ourselves carry the full sha256. Nothing is ever substituted: a missing file raises
:class:`bench.errors.Unavailable` with what to put where.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.errors import BenchError, Unavailable

ENV_DIR = "COLORBENCH_WEIGHTS"
ENV_OFFLINE = "COLORBENCH_OFFLINE"


@dataclass(frozen=True)
class WeightFile:
    key: str
    title: str  # what it is, used in messages: "<title> unavailable (put ...)"
    filename: str
    url: str
    sha256: str  # full hex digest, or the published prefix
    needed_by: tuple[str, ...]
    # Other files accepted in place of `filename`: (filename, sha256).
    alternates: tuple[tuple[str, str], ...] = ()

    def candidates(self) -> tuple[tuple[str, str], ...]:
        return ((self.filename, self.sha256),) + self.alternates


KNOWN_WEIGHTS: dict[str, WeightFile] = {
    w.key: w
    for w in (
        WeightFile(
            key="lpips-alexnet",
            title="LPIPS AlexNet trunk",
            filename="alexnet-owt-7be5be79.pth",
            url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            sha256="7be5be79",
            needed_by=("metric lpips", "metric fd-alex", "metric kd-alex"),
            # The convolutional trunk alone (torchvision key names, features.* only), as shipped in
            # ../shared/weights; checked against LPIPS's published example distances.
            alternates=(
                ("alexnet-features-lpips.pth", "d31a30dddae749a0575619d18490ea252c0fd7f02ab43c9d7d64c55d56e7ca78"),
            ),
        ),
        WeightFile(
            key="fid-inception",
            title="FID Inception weights",
            filename="pt_inception-2015-12-05-6726825d.pth",
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            sha256="6726825d",
            needed_by=("metric fid", "metric kid"),
        ),
        WeightFile(
            key="resnet18-imagenet",
            title="ImageNet ResNet18 weights",
            filename="resnet18-f37072fd.pth",
            url="https://download.pytorch.org/models/resnet18-f37072fd.pth",
            sha256="f37072fd",
            needed_by=("method pix2pix-resnet18",),
        ),
    )
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


@dataclass
class Located:
    file: WeightFile
    path: Path | None = None
    source: str | None = None  # "weights dir", "torch hub cache", "download"
    problems: tuple[str, ...] = ()  # files found but refused

    @property
    def found(self) -> bool:
        return self.path is not None


class WeightStore:
    """Finds pretrained files; one instance per run (it remembers verified hashes)."""

    def __init__(self, directory: str | Path | None = None, *, allow_download: bool | None = None):
        directory = directory if directory is not None else os.environ.get(ENV_DIR) or None
        self.directory = Path(directory).expanduser() if directory else None
        if self.directory is not None and not self.directory.is_dir():
            raise BenchError(f"weights directory {self.directory} does not exist")
        if allow_download is None:
            allow_download = os.environ.get(ENV_OFFLINE, "") in ("", "0")
        self.allow_download = allow_download
        self._verified: dict[tuple[str, float, int], str] = {}

    def _search_dirs(self) -> list[tuple[str, Path]]:
        dirs = [("weights dir", self.directory)] if self.directory else []
        return dirs + [("torch hub cache", hub_checkpoint_dir())]

    def _hash_ok(self, path: Path, expected: str) -> bool:
        stat = path.stat()
        key = (str(path), stat.st_mtime, stat.st_size)
        if key not in self._verified:
            self._verified[key] = sha256_of(path)
        return self._verified[key].startswith(expected.lower())

    def locate(self, key: str) -> Located:
        """Look in the local places only (no download)."""
        file = KNOWN_WEIGHTS[key]
        problems = []
        for source, directory in self._search_dirs():
            for filename, expected in file.candidates():
                path = directory / filename
                if not path.is_file():
                    continue
                if self._hash_ok(path, expected):
                    return Located(file, path, source)
                problems.append(f"refused {path}: sha256 does not match {expected}")
        return Located(file, problems=tuple(problems))

    def target_dir(self) -> Path:
        """Where a user should put a missing file."""
        return self.directory or hub_checkpoint_dir()

    def missing_message(self, located: Located, extra: str = "") -> str:
        file = located.file
        where = self.target_dir()
        hint = "" if self.directory else f" or in ${ENV_DIR}"
        message = f"{file.title} unavailable (put {file.filename} at {where}{hint}; from {file.url})"
        details = list(located.problems) + ([extra] if extra else [])
        return message + ("; " + "; ".join(details) if details else "")

    def path(self, key: str) -> Path:
        """The verified local path of a file, downloading it when allowed; else Unavailable."""
        located = self.locate(key)
        if located.found:
            return located.path
        extra = ""
        if self.allow_download:
            try:
                return self._download(located.file)
            except OSError as error:  # URLError is an OSError
                extra = f"download failed: {getattr(error, 'reason', error)}"
            except BenchError as error:  # a download with the wrong hash
                extra = str(error)
        else:
            extra = f"downloads disabled by {ENV_OFFLINE}"
        raise Unavailable(self.missing_message(located, extra))

    def load(self, key: str) -> dict:
        """The state dict of a file, loaded safely (weights_only)."""
        path = self.path(key)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # corrupt or not a state dict
            raise BenchError(f"cannot load {path}: {error}") from None

    def _download(self, file: WeightFile) -> Path:
        target = hub_checkpoint_dir() / file.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = file.sha256 if len(file.sha256) < 64 else None
        try:
            torch.hub.download_url_to_file(file.url, str(target), hash_prefix=prefix, progress=True)
        except RuntimeError as error:  # torch.hub's hash mismatch
            raise BenchError(f"refused download of {file.url}: {error}") from None
        if prefix is None and sha256_of(target) != file.sha256:
            target.unlink()
            raise BenchError(f"refused download of {file.url}: sha256 mismatch")
        return target

    def report(self) -> list[dict]:
        """One row per known file for `bench weights`."""
        rows = []
        for file in KNOWN_WEIGHTS.values():
            located = self.locate(file.key)
            rows.append(
                {
                    "key": file.key,
                    "file": file.filename,
                    "status": "found" if located.found else "missing",
                    "path": str(located.path) if located.found else None,
                    "source": located.source,
                    "needed_by": list(file.needed_by),
                    "url": file.url,
                    "sha256": file.sha256,
                    "put_at": None if located.found else str(self.target_dir()),
                    "problems": list(located.problems),
                }
            )
        return rows
