"""The one place where a dataset download failure becomes a one-line, actionable error.

Datasets download with torchvision's helpers (a progress bar and an md5 check) and wrap the call
in :func:`fetching`, so being offline, an HTTP error or a checksum mismatch all end the same way:
a :class:`BenchError` that says what to download and where to put it.
"""

from __future__ import annotations

import tarfile
from contextlib import contextmanager
from pathlib import Path

from bench.api import BenchError


def _reason(error: BaseException) -> str:
    if isinstance(error, RuntimeError):
        # torchvision raises RuntimeError only when a file fails its md5 check (download or unpacked).
        detail = f"md5 checksum mismatch: {error}"
    else:
        detail = str(getattr(error, "reason", None) or error)
    return " ".join(detail.split())  # one line, whatever the exception text holds


@contextmanager
def fetching(what: str, url: str, place: str | Path, *, folder: Path | None = None):
    """Run a download; turn its failure into ``cannot get WHAT (...): download URL and unpack it so that PLACE``.

    ``place`` describes where the unpacked files belong, e.g. ``/data/oxford17flowers/jpg/image_0001.jpg …``.
    ``folder``: where the download unpacks; the folders on its path that the failed attempt created are
    removed again when empty, so a wrong ``--data-root`` leaves nothing behind.
    """
    made = [] if folder is None else [p for p in (Path(folder), *Path(folder).parents) if not p.exists()]
    try:
        yield
    except (OSError, RuntimeError, tarfile.TarError, EOFError) as error:  # offline, HTTP error, bad md5, bad archive
        for created in made:  # deepest first
            try:
                created.rmdir()
            except FileNotFoundError:  # never made by this attempt
                continue
            except OSError:  # not empty: a partial download is kept for the next try
                break
        raise BenchError(
            f"cannot get {what} ({_reason(error)}): download {url} and unpack it so that {place} "
            "(or point --data-root / env COLORBENCH_DATA at a folder that holds it)"
        ) from None
