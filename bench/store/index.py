"""The SQLite index ``<out>/runs.sqlite``: one row per run folder, derivable from the result files.

The ``result.json`` files are the record; the index is a query cache over them, and acts like one:

- It is written in WAL mode with a busy timeout and retries, so concurrent writers wait instead of
  failing. Only ``ok`` runs have metric rows.
- A damaged or foreign file (not a database; a database with other tables) is moved aside to
  ``runs.sqlite.damaged-<time>`` and made again from the result files, with a one-line warning, by
  whatever opens it (``bench run``, ``bench index``).
- ``rebuild`` (``bench index --rebuild``) builds a new index in a file beside it, then swaps its
  content in with one write transaction of the live index: writers wait for it, and a result written
  while the files were being read (its file is newer than the scan) is read again inside that
  transaction, so nothing a concurrent writer committed is lost. (The file itself is not renamed over:
  a connection still open on the old file, or its ``-wal`` journal, would then meet the new one.)
- ``check`` (``bench index``) compares every row with its file: status, steps, metric values, every
  column; ``sync_result`` writes a finished run's row when it is missing or stale.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path

from bench.errors import BenchError
from bench.progress import warn
from bench.store.atomic import os_reason, temp_path
from bench.store.results import INDEX_FILE, RESULT_FILE, DamagedResult, clean, load_results, read_result, result_files

BUSY_TIMEOUT_S = 30.0
RETRIES = 8
MTIME_SLACK_S = 2.0  # file systems with coarse timestamps: a file this much older than a scan may be newer
DAMAGED_SUFFIX = ".damaged-"
LOCK_FILE = ".runs.sqlite.lock"  # held while a damaged index is moved aside (never by ordinary writers)

_RUN_COLUMNS = ("path", "run_key", "config_hash", "kind", "dataset", "method", "seed", "size", "budget_kind",
                "budget_value", "budget_used", "steps", "status", "error", "device", "hardware", "precision",
                "created")
_METRIC_COLUMNS = ("path", "name", "value", "status")
_TABLES = {"runs": _RUN_COLUMNS, "metrics": _METRIC_COLUMNS}

_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    path TEXT PRIMARY KEY,
    run_key TEXT, config_hash TEXT, kind TEXT,
    dataset TEXT, method TEXT, seed INTEGER, size INTEGER,
    budget_kind TEXT, budget_value REAL, budget_used REAL, steps INTEGER,
    status TEXT, error TEXT, device TEXT, hardware TEXT, precision TEXT, created TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    path TEXT, name TEXT, value REAL, status TEXT,
    PRIMARY KEY (path, name)
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (run_key);
"""


class _Damaged(Exception):
    """The index file is not a colorbench index; the message says why."""


def _retry(action):
    """Run ``action``; on 'database is locked' (past the busy timeout) wait and try again."""
    for attempt in range(RETRIES):
        try:
            return action()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error) or attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Not a database, or a malformed one (as opposed to locked, read-only, a full disk)."""
    code = getattr(error, "sqlite_errorname", "")
    if code:
        return code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT"))
    text = str(error)
    return "not a database" in text or "malformed" in text


def _foreign(connection: sqlite3.Connection) -> str | None:
    """Why this SQLite file is not a colorbench index; None when it is one (or a new, empty file)."""
    tables = [name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    others = [name for name in tables if name not in _TABLES]
    if others:
        return f"a SQLite file with other tables ({', '.join(others)})"
    for name in tables:
        columns = tuple(row[1] for row in connection.execute(f"PRAGMA table_info({name})"))
        if columns != _TABLES[name]:
            return f"a SQLite file whose table {name} has other columns"
    return None


def _open(path: Path) -> sqlite3.Connection:
    """A connection to the index at ``path`` (made when absent); _Damaged when the file is not one."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        problem = _retry(lambda: _foreign(connection))  # read before anything is written to someone else's file
        if problem is not None:
            raise _Damaged(problem)
        _retry(lambda: connection.execute("PRAGMA journal_mode=WAL"))
        _retry(lambda: connection.executescript(_DDL))
    except sqlite3.DatabaseError as error:
        connection.close()
        if _is_damage(error):
            raise _Damaged(str(error)) from None
        raise BenchError(f"{path}: {error}") from None
    except BaseException:
        connection.close()
        raise
    return connection


@contextlib.contextmanager
def _recovery_lock(out: Path):
    """Only one process moves a damaged index aside (POSIX; elsewhere the rename itself decides)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(out / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _set_aside(out: Path, why: str) -> Path | None:
    """Move a damaged index (and its -wal/-shm) aside and make a new, empty one; returns where it went,
    or None when another process already did."""
    path = out / INDEX_FILE
    with _recovery_lock(out):
        try:  # another process may have set it aside (and made a new one) while this one waited
            _open(path).close()
            return None
        except _Damaged:
            pass
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside, number = path.with_name(f"{INDEX_FILE}{DAMAGED_SUFFIX}{stamp}"), 1
        while aside.exists():
            number += 1
            aside = path.with_name(f"{INDEX_FILE}{DAMAGED_SUFFIX}{stamp}-{number}")
        os.replace(path, aside)
        for journal in ("-wal", "-shm", "-journal"):  # never to be paired with the new file
            if path.with_name(INDEX_FILE + journal).exists():
                os.replace(path.with_name(INDEX_FILE + journal), aside.with_name(aside.name + journal))
        _open(path).close()  # writers from now on land in a valid index; the rebuild fills it
    warn(f"{path} is damaged or not a colorbench index ({why.splitlines()[0]}): moved aside to {aside.name} "
         "and rebuilt from the result files")
    return aside


def connect(out: Path) -> sqlite3.Connection:
    """A connection to ``<out>/runs.sqlite``; a damaged or foreign file is set aside and rebuilt first."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _open(out / INDEX_FILE)
    except _Damaged as damage:
        if _set_aside(out, str(damage)) is not None:
            rebuild(out)
    return _open(out / INDEX_FILE)


def _session(out: Path, action):
    """``action(connection)`` on the index; a file found damaged on the way is set aside, rebuilt, and the
    action done again."""
    out = Path(out)
    for attempt in range(2):
        connection = connect(out)
        try:
            return action(connection)
        except sqlite3.DatabaseError as error:
            if not _is_damage(error) or attempt:
                raise BenchError(f"{out / INDEX_FILE}: {error}") from None
            damage = str(error)
        finally:
            connection.close()
        if _set_aside(out, damage) is not None:
            rebuild(out)


def _update(out: Path, action):
    """``_session`` for writing a row: the index is a cache of the result files, so a write it cannot take (a
    full disk, a read-only folder) is said in one line and costs nothing else; ``bench index`` finds the
    drift, ``bench index --rebuild`` repairs it. Returns the action's value, or None when it could not run."""
    try:
        return _session(out, action)
    except (BenchError, OSError) as error:
        reason = os_reason(error) if isinstance(error, OSError) else str(error)
        warn(f"the run index was not updated ({reason}); the result files were, and `bench index --rebuild` "
             "brings the index up to date")
        return None


def _scalar(value):
    """What SQLite can hold: odd values in a result (a list where a name belongs) as JSON text."""
    if value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else float(value)
    import json

    return json.dumps(value, sort_keys=True, default=str)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _row(key: str, result: dict) -> tuple:
    budget = _dict(result.get("budget"))
    identity = _dict(result.get("identity"))
    return tuple(_scalar(v) for v in (
        key, result.get("run_key"), result.get("config_hash"), result.get("kind", "method"),
        result.get("dataset"), result.get("method"), result.get("seed"), result.get("size"),
        budget.get("kind"), budget.get("value"), budget.get("used"), budget.get("steps"),
        result.get("status"), result.get("error"),
        _dict(result.get("environment")).get("device"), identity.get("hardware"), identity.get("precision"),
        result.get("created"),
    ))


def _metric_rows(key: str, result: dict) -> dict[str, tuple]:
    """{name: (path, name, value, status)}: only ``ok`` runs have metric rows."""
    if result.get("status") != "ok":
        return {}
    rows = {}
    for name, detail in _dict(result.get("metric_details")).items():
        detail = _dict(detail)
        rows[str(name)] = (key, str(name), _scalar(clean(detail.get("value"))), _scalar(detail.get("status")))
    return rows


def _write(db: sqlite3.Connection, key: str, result: dict) -> None:
    db.execute(f"INSERT OR REPLACE INTO runs VALUES ({','.join('?' * len(_RUN_COLUMNS))})", _row(key, result))
    db.execute("DELETE FROM metrics WHERE path = ?", (key,))
    db.executemany("INSERT INTO metrics VALUES (?,?,?,?)", list(_metric_rows(key, result).values()))


def index_key(out: Path, result_path: Path) -> str:
    return Path(result_path).parent.resolve().relative_to(Path(out).resolve()).as_posix()


def _read_rows(connection: sqlite3.Connection, key: str | None = None) -> tuple[dict, dict]:
    """({path: run row}, {path: {metric name: metric row}}) as stored; one path's, or every one."""
    where, args = (" WHERE path = ?", (key,)) if key is not None else ("", ())
    rows = {r[0]: tuple(r) for r in connection.execute("SELECT * FROM runs" + where, args)}
    metrics: dict[str, dict] = {}
    for r in connection.execute("SELECT * FROM metrics" + where, args):
        metrics.setdefault(r[0], {})[r[1]] = tuple(r)
    return rows, metrics


def _as_stored(entries: list[tuple[str, dict]]) -> tuple[dict, dict]:
    """The rows these results make, as SQLite gives them back (its column types applied), for comparing."""
    memory = sqlite3.connect(":memory:")
    try:
        memory.executescript(_DDL)
        for key, result in entries:
            _write(memory, key, result)
        return _read_rows(memory)
    finally:
        memory.close()


def sync_result(out: Path, path: Path, result: dict) -> bool:
    """Write the row of ``result`` (found finished in ``path``) when the index lacks it or holds another
    version of it (a stale row); True when it wrote."""
    key = index_key(out, path)
    expected = _as_stored([(key, result)])

    def sync(connection) -> bool:
        if _retry(lambda: _read_rows(connection, key)) == expected:
            return False

        def transaction():
            with connection:
                _write(connection, key, result)
        _retry(transaction)
        return True
    return bool(_update(out, sync))


def sync_folder(out: Path, folder: Path) -> bool:
    """Index the run in ``folder`` from its ``result.json``, the record: its row written when missing or stale.
    Nothing when the folder holds no readable result (a damaged one is said in one line)."""
    path = Path(folder) / RESULT_FILE
    result = read_result(path)
    return result is not None and sync_result(out, path, result)


def _result_files(out: Path) -> dict[str, tuple[Path, float]]:
    """{index key: (result.json, its mtime)} of every result file below ``out`` now."""
    found = {}
    for path in result_files(out):
        try:
            found[index_key(out, path)] = (path, path.stat().st_mtime)
        except OSError:  # gone since it was listed, or a link loop: not a result
            continue
    return found


def rebuild(out: Path, damaged: list | None = None) -> int:
    """Make the index again from the result files; returns the number of runs indexed.

    Damaged result files are left out (listed in ``damaged`` when given, else warned about). The new
    index is built in a file beside the live one, then swapped in with one write transaction (see the
    module): results written since the scan began are read again inside it.
    """
    out = Path(out)
    if not out.is_dir():
        raise BenchError(f"runs folder {out} does not exist")
    started = time.time()
    results = load_results(out, damaged)
    fresh = temp_path(out / INDEX_FILE)
    try:
        build = sqlite3.connect(fresh)
        try:
            build.executescript(_DDL)
            with build:
                for result in results:
                    _write(build, index_key(out, Path(result.pop("_dir")) / RESULT_FILE), result)
        finally:
            build.close()

        def swap(connection) -> int:
            connection.execute("ATTACH DATABASE ? AS fresh", (str(fresh),))
            try:
                def transaction() -> int:
                    connection.execute("BEGIN IMMEDIATE")  # the index's write lock: writers wait for the swap
                    try:
                        connection.execute("DELETE FROM main.runs")
                        connection.execute("DELETE FROM main.metrics")
                        connection.execute("INSERT INTO main.runs SELECT * FROM fresh.runs")
                        connection.execute("INSERT INTO main.metrics SELECT * FROM fresh.metrics")
                        now = _result_files(out)
                        for key, (path, mtime) in now.items():
                            if mtime < started - MTIME_SLACK_S:
                                continue
                            try:  # written (and maybe indexed by its writer) while the files were read
                                result = read_result(path, strict=True)
                            except DamagedResult:
                                connection.execute("DELETE FROM main.runs WHERE path = ?", (key,))
                                continue
                            if result is not None:
                                _write(connection, key, result)
                        gone = [(key,) for (key,) in connection.execute("SELECT path FROM main.runs") if key not in now]
                        connection.executemany("DELETE FROM main.runs WHERE path = ?", gone)  # removed meanwhile
                        connection.execute("DELETE FROM main.metrics WHERE path NOT IN (SELECT path FROM main.runs)")
                        count = connection.execute("SELECT COUNT(*) FROM main.runs").fetchone()[0]
                        connection.execute("COMMIT")
                        return count
                    except BaseException:
                        if connection.in_transaction:
                            connection.execute("ROLLBACK")
                        raise
                return _retry(transaction)
            finally:
                connection.execute("DETACH DATABASE fresh")
        return _session(out, swap)
    finally:
        for leftover in (fresh, fresh.with_name(fresh.name + "-journal")):
            leftover.unlink(missing_ok=True)


def check(out: Path) -> dict:
    """Compare the index with the result files, row by row.

    Returns {"files", "rows", "missing" (files without a row), "stale" (rows without a file), "differs"
    ([{"path", "fields": {column: [index value, file value]}}]: rows that say something else than their
    file: status, steps, a metric value, ...), "damaged" ([{"path", "reason"}]: result files that cannot
    be read; ``bench run`` does their runs again)}.
    """
    out = Path(out)
    if not out.is_dir():
        raise BenchError(f"runs folder {out} does not exist")
    damaged: list = []
    results = load_results(out, damaged)
    rows, metrics = _as_stored([(index_key(out, Path(r.pop("_dir")) / RESULT_FILE), r) for r in results])
    stored_rows, stored_metrics = _session(out, lambda connection: _retry(lambda: _read_rows(connection)))
    damaged_keys = {index_key(out, path): reason for path, reason in damaged}
    differs = []
    for key in sorted(set(rows) & set(stored_rows)):
        fields = {column: [stored, wanted] for column, stored, wanted in zip(_RUN_COLUMNS, stored_rows[key], rows[key])
                  if stored != wanted}
        wanted_metrics, got_metrics = metrics.get(key, {}), stored_metrics.get(key, {})
        for name in sorted(set(wanted_metrics) | set(got_metrics)):
            stored, wanted = got_metrics.get(name), wanted_metrics.get(name)
            if stored != wanted:
                fields[f"metric {name}"] = [stored and list(stored[2:]), wanted and list(wanted[2:])]
        if fields:
            differs.append({"path": key, "fields": fields})
    return {"files": len(rows), "rows": len(stored_rows), "missing": sorted(set(rows) - set(stored_rows)),
            "stale": sorted(set(stored_rows) - set(rows) - set(damaged_keys)), "differs": differs,
            "damaged": [{"path": key, "reason": reason} for key, reason in sorted(damaged_keys.items())]}
