"""One run, one trainer: an OS file lock per run folder while a process trains or scores it.

The lock is ``flock`` on ``.<folder name>.lock`` beside the run folder (beside, not inside: ``--force``
swaps the folder itself). The kernel releases it when its process ends however it ends, ``kill -9``
included, so a dead holder's run is taken over by the next process that asks (and resumed from its
``resume.pt``). The holder writes ``PID N on HOST`` into the file, for the message another process
gives. ``flock`` works between the processes of one machine, and over NFS (where Linux maps it to
POSIX locks), so two grids sharing an ``--out`` train each run once.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Iterator

from bench.errors import BenchError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there (said in the README)
    fcntl = None


HOLDER_BYTES = 256


class RunLocked(BenchError):
    """Another live process holds the run folder: ``locked by PID N on HOST``."""


def lock_path(folder: Path) -> Path:
    return Path(folder).parent / f".{Path(folder).name}.lock"


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold the run folder's lock for the block; :class:`RunLocked` at once when another process holds it."""
    if fcntl is None:
        yield
        return
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, HOLDER_BYTES, 0).decode("utf-8", "replace").strip() or "another process"
            raise RunLocked(f"locked by {holder}") from None
        holder = f"PID {os.getpid()} on {socket.gethostname()}".encode()[:HOLDER_BYTES - 1]
        try:  # a fixed width, written over the last holder's: no new block, so a full disk takes it too
            os.pwrite(fd, holder.ljust(HOLDER_BYTES - 1) + b"\n", 0)
        except OSError:
            pass  # the lock holds all the same; only the message of another process is vaguer
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a process opening it)
