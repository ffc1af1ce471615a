"""Run folders: ``result.json`` and the files beside it, written so that a crash never mixes runs.

Every file is written to a per-process unique temporary name in its own folder, fsynced, then
moved into place with ``os.replace``; ``result.json`` is written after the files it describes,
and the index row after it. Temporary files left by a crashed process are removed the next time
a run uses the folder (``clean_orphans``).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Callable

from bench.errors import BenchError
from bench.store.identity import safe_name

RESULT_FILE = "result.json"
INDEX_FILE = "runs.sqlite"
SCHEMA = 2
TMP_SUFFIX = ".tmp"


def run_dir(out: Path, dataset: str, method: str, seed: int) -> Path:
    """A plain folder for results that have no identity (examples, imports of old results)."""
    return Path(out) / safe_name(dataset) / safe_name(method) / f"seed{seed}"


def find_runs(out: Path, dataset: str, method: str, seed: int | None = None) -> list[Path]:
    """The run folders of ``method`` on ``dataset`` under ``out`` (every config; one seed or all)."""
    pattern = f"*/seed{seed}" if seed is not None else "*/seed*"
    return sorted(p for p in (Path(out) / safe_name(dataset) / safe_name(method)).glob(pattern) if p.is_dir())


def clean(value):
    """JSON without NaN/Infinity (not valid JSON): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


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


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` then move tmp onto ``path`` (fsynced): the file is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_orphans(directory: Path) -> list[Path]:
    """Remove temporary files of processes that no longer run (a crash mid-write); returns them."""
    removed = []
    if not Path(directory).is_dir():
        return removed
    for tmp in Path(directory).rglob(f".*{TMP_SUFFIX}"):
        owner = tmp.name.rsplit(".", 2)[-2].split("-")[0]
        if owner.isdigit() and int(owner) != os.getpid() and not _pid_alive(int(owner)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def read_result(path: Path) -> dict | None:
    """A run folder's result.json (or the file itself), or None when there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BenchError(f"cannot read {path}: {error}") from None
    if not isinstance(result, dict) or "method" not in result or "dataset" not in result:
        raise BenchError(f"{path} is not a colorbench result (no method/dataset)")
    return result


def write_result(out: Path, directory: Path, result: dict, index: bool = True) -> Path:
    """Write ``result.json`` (atomically), then its index row (``index=False``: a launcher's worker,
    whose driver indexes the result it returns)."""
    from bench.store.index import index_result

    path = atomic_write_text(Path(directory) / RESULT_FILE, json.dumps(clean(result), indent=2) + "\n")
    if index:
        index_result(out, path, result)
    return path


def load_results(runs_dir: Path) -> list[dict]:
    """Every result.json below ``runs_dir``, each with ``_dir`` (its folder) added."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise BenchError(f"runs folder {runs_dir} does not exist")
    results = []
    for path in sorted(runs_dir.rglob(RESULT_FILE)):
        result = read_result(path)
        result["_dir"] = str(path.parent)
        results.append(result)
    return results
