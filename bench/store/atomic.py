"""Files that land whole or not at all: the project's one home for writing to disk.

Every file is written to a per-process unique temporary name in its own folder, fsynced, then moved into place
with ``os.replace``; temporary files left by a crashed process are removed the next time their folder is used
(``clean_orphans``). A whole folder (a report site, a study, a ``--force`` replacement) is built the same way:
beside its target under a temporary name, then swapped in (``atomic_folder``, ``replace_folder``); a kill
between the swap's two renames is undone by ``recover_folder``.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

from bench.errors import BenchError
from bench.progress import warn

TMP_SUFFIX = ".tmp"
ASIDE_SUFFIX = ".old"  # a folder's previous version, renamed aside while its new one is renamed in
# A name made by temp_path (or an aside): .<name>.<pid>-<8 hex><suffix>
_OWNED = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}(\.tmp|\.old)$")


def os_reason(error: OSError) -> str:
    """An OSError as a few words: ``no space left on device``."""
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def temp_path(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process or call can pick."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails when the target exists, even one created since the caller looked
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: check, then rename
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def atomic_write(path: Path, write: Callable[[Path], None], *, replace: bool = True) -> Path:
    """Call ``write(tmp)`` then move tmp onto ``path`` (fsynced): the file is whole or absent. ``replace=False``
    never replaces a file at ``path``: FileExistsError, even for one made meanwhile by another process."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        _publish(tmp, path, replace)
    except FileExistsError:
        raise
    except OSError as error:  # named after the file it was to become, not its temporary name
        raise OSError(error.errno, os_reason(error), str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def _owner(path: Path) -> int | None:
    """The process id in a name made by ``temp_path`` (or an aside), else None."""
    match = _OWNED.match(path.name)
    return int(match.group(1)) if match else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphaned(path: Path) -> bool:
    owner = _owner(path)
    return owner is not None and owner != os.getpid() and not _pid_alive(owner)


def clean_orphans(directory: Path, recursive: bool = True) -> list[Path]:
    """Remove temporary files (and folders) of processes that no longer run (a crash mid-write); returns them."""
    removed = []
    if not Path(directory).is_dir():
        return removed
    found = Path(directory).rglob(f".*{TMP_SUFFIX}") if recursive else Path(directory).glob(f".*{TMP_SUFFIX}")
    for tmp in list(found):
        if _orphaned(tmp):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _asides(target: Path) -> list[Path]:
    """Previous versions of the folder ``target`` that a killed swap left renamed aside, newest first."""
    name = re.compile(rf"^\.{re.escape(target.name)}\.\d+-[0-9a-f]{{8}}{re.escape(ASIDE_SUFFIX)}$")
    found = [p for p in target.parent.glob(f".{glob.escape(target.name)}.*{ASIDE_SUFFIX}")
             if name.match(p.name) and _orphaned(p)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def recover_folder(target: Path) -> None:
    """Undo what a process killed in ``atomic_folder`` left beside ``target``: its half-built folder goes; a
    previous version it had renamed aside (killed between the two renames) comes back."""
    clean_orphans(target.parent, recursive=False)
    asides = _asides(target)
    if asides and not os.path.lexists(target):
        os.rename(asides.pop(0), target)
        warn(f"{target}: put back the previous version, which an interrupted update had left aside")
    for aside in asides:
        shutil.rmtree(aside, ignore_errors=True)


def replace_folder(new: Path, target: Path) -> None:
    """Move the complete folder ``new`` onto ``target`` (see ``_swap_in``); a kill between its two renames is
    undone by ``recover_folder(target)``."""
    _swap_in(new, target, replace=True)


def _swap_in(new: Path, target: Path, replace: bool) -> None:
    """Move the folder ``new`` onto ``target``: one rename when ``target`` is absent or an empty folder, else
    (``replace``) the old one renamed aside, the new one renamed in, then the old one removed."""
    try:
        os.rename(new, target)  # atomic; refuses a folder that is not empty
        return
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not replace:
            raise
    aside = temp_path(target).with_suffix(ASIDE_SUFFIX)
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: Path, *, replace: bool = True, what: str = "folder") -> Iterator[Path]:
    """Build a folder whole, then publish it: yields an empty folder beside ``target`` (the same file
    system); when the block ends it is swapped in (``replace=False``: only onto nothing or an empty folder).

    An exception in the block -- or a kill at any moment -- leaves ``target`` as it was: the half-built
    folder is removed (a killed process's the next time), and an OSError becomes a one-line
    :class:`BenchError` (``cannot write the site …: no space left on device``).
    """
    target = Path(os.path.realpath(target)) if Path(target).is_symlink() else Path(target)
    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover_folder(target)
        staging = temp_path(target)
        staging.mkdir()
        yield staging
        _swap_in(staging, target, replace)
    except OSError as error:
        raise BenchError(f"cannot write the {what} {target}: {os_reason(error)}"
                         + ("; the previous one is left as it was" if target.exists() else "")) from None
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
