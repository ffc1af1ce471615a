"""``bench colorize``: a trained checkpoint applied to a user's photos, file by file.

Inputs are files and folders. Folders are searched recursively (hidden files and folders, and the
output folder, are left out; symlinked folders are not followed) for the files ``--glob`` matches,
by default every extension Pillow can open. Each input gives an output or a one-line reason naming
it, and the others go on.

Output names keep the input's extension: ``photo.jpg`` -> ``photo.jpg.png``, under the input's
sub-folder for folder inputs, so ``x.jpg`` and ``x.png`` never meet. Names that still coincide (the
same file name from two places, or names differing only in case) are numbered: ``x.jpg-2.png``.
An existing output is never replaced without ``--overwrite``: that input is *skipped*, which is not
a failure (re-running over a folder colorizes only the new photos). Files are written under a
temporary name and moved into place, so an output is whole or absent; an interrupted or killed
``bench colorize`` leaves no temporary file: Ctrl-C and SIGTERM end it through the cleanup that
removes the file being written (``stopping_on_sigterm``), and the temporary files of a process that
died without cleanup (SIGKILL) are removed by the next ``bench colorize`` into that folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from PIL import Image

from bench.errors import BenchError
from bench.photo import colorize_photo, read_photo
from bench.method import Method
from bench.store.atomic import atomic_write

STATUSES = ("colorized", "failed", "skipped")


@dataclass
class FileResult:
    input: str
    status: str  # one of STATUSES
    output: str | None = None
    reason: str | None = None  # one line naming the input, for failed and skipped files

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PhotoJob:
    source: Path
    target: Path


def image_extensions() -> set[str]:
    """File extensions of every format Pillow can open (lower case, with the dot)."""
    Image.init()
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def _matches(relative: Path, glob: str | None, extensions: set[str]) -> bool:
    if glob is None:
        return relative.suffix.lower() in extensions
    # From the right, case-insensitively: "*.jpg" matches sub/x.JPG, "2019/*.png" matches a/2019/y.png.
    return PurePosixPath(relative.as_posix().lower()).match(glob.lower())


def _walk(folder: Path, glob: str | None, skip: Path, unreadable: list[FileResult]):
    """Matching files below ``folder``, sorted; sub-folders that cannot be listed go to ``unreadable``."""
    extensions = image_extensions()

    def report(error: OSError) -> None:
        unreadable.append(FileResult(str(error.filename), "failed",
                                     reason=f"{error.filename}: cannot list this folder ({error.strerror})"))

    for root, dirs, files in os.walk(folder, onerror=report):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(root, d).resolve() != skip)
        for name in sorted(files):
            path = Path(root, name)
            if not name.startswith(".") and _matches(path.relative_to(folder), glob, extensions) and path.is_file():
                yield path


def _claim_name(folder: Path, name: str, taken: set[str]) -> Path:
    """``<name>.png`` in ``folder``, numbered when an earlier input already has that name."""
    candidate, number = folder / f"{name}.png", 1
    while candidate.as_posix().casefold() in taken:  # casefold: case-insensitive file systems
        number += 1
        candidate = folder / f"{name}-{number}.png"
    taken.add(candidate.as_posix().casefold())
    return candidate


def plan(inputs: list[str], out: Path, glob: str | None = None) -> list[PhotoJob | FileResult]:
    """Every input in order: a PhotoJob with its output path, or the FileResult of an unusable input."""
    out = Path(out)
    skip = out.resolve()
    found: list[tuple[Path, Path] | FileResult] = []  # (file, output sub-folder) or a failure
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            if path.resolve() == skip:
                raise BenchError(f"--out {out} is the input folder {text}: choose another folder so the outputs "
                                 "are not mixed with the photos")
            unreadable: list[FileResult] = []
            files = list(_walk(path, glob, skip, unreadable))
            found += unreadable
            if not files and not unreadable:
                wanted = f"--glob {glob!r}" if glob else "an image extension"
                found.append(FileResult(text, "failed", reason=f"{text}: no files matching {wanted} in this folder "
                                        "or below"))
            found += [(file, file.parent.relative_to(path)) for file in files]
        elif path.is_file():
            found.append((path, Path()))
        elif path.exists():
            found.append(FileResult(text, "failed", reason=f"{text}: not a regular file"))
        else:
            found.append(FileResult(text, "failed", reason=f"{text}: no such file or folder"))
    entries: list[PhotoJob | FileResult] = []
    seen: dict[Path, Path] = {}
    taken: set[str] = set()
    for item in found:
        if isinstance(item, FileResult):
            entries.append(item)
            continue
        file, folder = item
        first = seen.setdefault(file.resolve(), file)
        if first is not file:
            entries.append(FileResult(str(file), "skipped", reason=f"{file}: listed more than once (first as {first})"))
            continue
        entries.append(PhotoJob(file, out / _claim_name(folder, file.name, taken)))
    return entries


def write_png(image: Image.Image, target: Path, *, overwrite: bool) -> None:
    """Write atomically (``bench.store.atomic``: temporary name, fsync, move); FileExistsError when the target
    exists and ``overwrite`` is off."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BenchError(f"cannot create the folder {target.parent} ({error.strerror or error})") from None
    try:
        atomic_write(target, lambda tmp: image.save(tmp, format="PNG"), replace=overwrite)
    except FileExistsError:
        raise
    except OSError as error:
        raise BenchError(f"cannot write {target} ({error.strerror or error})") from None


@contextlib.contextmanager
def stopping_on_sigterm():
    """SIGTERM (``kill``, a scheduler) raises KeyboardInterrupt in the main thread, as Ctrl-C does, so the
    file being written is removed on the way out instead of being left behind by a sudden exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def colorize_file(method: Method, job: PhotoJob, *, overwrite: bool, max_pixels: int) -> FileResult:
    name = str(job.source)
    exists = FileResult(name, "skipped", str(job.target), f"{name}: {job.target} already exists (--overwrite "
                        "replaces it)")
    if not overwrite and (job.target.exists() or job.target.is_symlink()):
        return exists
    try:
        image = colorize_photo(method, read_photo(job.source, max_pixels=max_pixels))
        write_png(image, job.target, overwrite=overwrite)
    except FileExistsError:
        return exists
    except BenchError as error:
        message = str(error)
        return FileResult(name, "failed", reason=message if message.startswith(name) else f"{name}: {message}")
    except MemoryError:
        return FileResult(name, "failed", reason=f"{name}: out of memory (lower --max-pixels to refuse such photos)")
    except Exception as error:  # one bad file never stops the others
        detail = str(error).splitlines()[0] if str(error) else ""
        return FileResult(name, "failed", reason=f"{name}: {type(error).__name__}: {detail}".rstrip(": "))
    return FileResult(name, "colorized", str(job.target))


def colorize_all(method: Method, entries: list[PhotoJob | FileResult], *, overwrite: bool, max_pixels: int,
                 on_result: Callable[[FileResult], None] = lambda result: None) -> list[FileResult]:
    """Colorize every job in order; ``on_result`` sees each result as it is decided."""
    results = []
    for entry in entries:
        result = entry if isinstance(entry, FileResult) else colorize_file(
            method, entry, overwrite=overwrite, max_pixels=max_pixels)
        on_result(result)
        results.append(result)
    return results


def summary(results: list[FileResult]) -> dict[str, int]:
    return {status: sum(r.status == status for r in results) for status in STATUSES}


def summary_line(results: list[FileResult]) -> str:
    """E.g. ``colorized 7, failed 3, skipped 1``."""
    return ", ".join(f"{status} {count}" for status, count in summary(results).items())
