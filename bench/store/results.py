"""Run folders: ``result.json`` and the files beside it, written so that a crash never mixes runs.

Every file lands whole or not at all (``bench.store.atomic``); ``result.json`` is written after the files it
describes; the launcher indexes the folder after it (``bench.store.index``).

A ``result.json`` that cannot be read (truncated, not UTF-8, not a result object) is *damaged*: it
costs its own run, never the others. ``read_result`` says so in one line and reads it as absent
(``bench run`` does that run again); ``load_results`` leaves it out (``bench report`` renders the
rest).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from bench.errors import BenchError
from bench.progress import warn
from bench.store.atomic import atomic_write_text, os_reason

RESULT_FILE = "result.json"
INDEX_FILE = "runs.sqlite"
SCHEMA = 2


class DamagedResult(BenchError):
    """A result.json that cannot be read: truncated, not UTF-8, or not a colorbench result object."""


def clean(value):
    """JSON without NaN/Infinity (not valid JSON): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def _parse_result(path: Path) -> dict:
    """The result in ``path``; DamagedResult (one line) when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise DamagedResult(f"{path}: cannot read it ({os_reason(error)})") from None
    except UnicodeDecodeError as error:
        raise DamagedResult(f"{path}: not UTF-8 text (byte {error.start})") from None
    try:
        result = json.loads(text)
    except json.JSONDecodeError as error:
        raise DamagedResult(f"{path}: not valid JSON, truncated? ({error.msg}: line {error.lineno}, column "
                            f"{error.colno})") from None
    except RecursionError:
        raise DamagedResult(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(result, dict):
        raise DamagedResult(f"{path}: a JSON {type(result).__name__}, not a colorbench result object")
    if "method" not in result or "dataset" not in result:
        raise DamagedResult(f"{path}: not a colorbench result (no method/dataset)")
    return result


def read_result(path: Path, *, strict: bool = False) -> dict | None:
    """A run folder's result.json (or the file itself), or None when there is none.

    A damaged one (see the module) raises :class:`DamagedResult` with ``strict``; otherwise it is said in
    one line and read as absent: its run is not done, and is done again.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        if not path.is_symlink():
            return None
        error = DamagedResult(f"{path}: a broken symbolic link or a link loop")
    else:
        try:
            return _parse_result(path)
        except DamagedResult as damaged:
            error = damaged
    if strict:
        raise error
    warn(f"{error}; its run counts as not done and is done again")
    return None


def result_header(kind: str, identity, *, method: str, plugin: str, description: str, seed: int | None,
                  environment: dict, **fields) -> dict:
    """What every ``result.json`` starts with, a method's run and a reference row alike: the schema, what ran on
    which data (``identity``: a run or reference identity), ``ok`` until said otherwise, the environment and the
    time; ``fields`` add to it or replace the empty ``budget`` and ``timings``."""
    return {
        "schema": SCHEMA, "kind": kind, "method": method, "method_plugin": plugin, "method_description": description,
        "dataset": identity.dataset, "size": identity.size, "seed": seed, "status": "ok", "error": None,
        "identity": identity.to_dict(), "run_key": identity.run_key, "budget": {}, "timings": {},
        "environment": environment, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    } | fields


def status_text(result: dict) -> str:
    """A result's status and its error in one line, the status said once: ``interrupted: stopped at step 9 …``
    (an error that already begins with the status, as an interrupted run's does, is not prefixed again)."""
    status, error = str(result.get("status")), result.get("error")
    if not error:
        return status
    error = " ".join(str(error).split())
    return error if error.startswith((f"{status}:", f"{status} ")) else f"{status}: {error}"


def write_result(directory: Path, result: dict) -> Path:
    """Write ``result.json`` (atomically). The index row follows from the file: the launcher indexes each
    run folder once its run is done (``bench.store.index.sync_folder``)."""
    return atomic_write_text(Path(directory) / RESULT_FILE, json.dumps(clean(result), indent=2) + "\n")


def result_files(root: Path) -> list[Path]:
    """Every ``result.json`` below ``root``, sorted; none inside a hidden folder (a ``--force`` replacement that is
    being swapped in, or a temporary folder: not a run of the record)."""
    root = Path(root)
    return sorted(path for path in root.rglob(RESULT_FILE) if not (path.is_dir() and not path.is_symlink())
                  and not any(part.startswith(".") for part in path.relative_to(root).parts[:-1]))


def load_results(runs_dir: Path, damaged: list | None = None) -> list[dict]:
    """Every readable result.json below ``runs_dir``, each with ``_dir`` (its folder) added.

    A damaged one is left out: appended to ``damaged`` as (path, one-line reason) when a list is given,
    else said in a one-line warning.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise BenchError(f"runs folder {runs_dir} does not exist")
    results = []
    for path in result_files(runs_dir):
        try:
            result = read_result(path, strict=True)
        except DamagedResult as error:
            if damaged is None:
                warn(f"left out {error}")
            else:
                damaged.append((path, str(error)))
            continue
        result["_dir"] = str(path.parent)
        results.append(result)
    return results
