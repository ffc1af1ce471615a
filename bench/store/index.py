"""The SQLite index ``<out>/runs.sqlite``: one row per run folder, derivable from the result files.

The ``result.json`` files are the record; the index is a query cache over them. It is written in
WAL mode with a busy timeout and retries, so concurrent writers wait instead of failing, and
``rebuild`` (``bench index --rebuild``) makes it again from the files. Only ``ok`` runs have
metric rows.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from bench.errors import BenchError
from bench.store.results import INDEX_FILE, RESULT_FILE, clean, load_results

BUSY_TIMEOUT_S = 30.0
RETRIES = 8

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


def connect(out: Path) -> sqlite3.Connection:
    Path(out).mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(Path(out) / INDEX_FILE, timeout=BUSY_TIMEOUT_S)
    _retry(lambda: connection.execute("PRAGMA journal_mode=WAL"))
    _retry(lambda: connection.executescript(_DDL))
    return connection


def _retry(action):
    """Run ``action``; on 'database is locked' (past the busy timeout) wait and try again."""
    for attempt in range(RETRIES):
        try:
            return action()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error) or attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))


def _row(key: str, result: dict) -> tuple:
    budget = result.get("budget") or {}
    identity = result.get("identity") or {}
    return (
        key, result.get("run_key"), result.get("config_hash"), result.get("kind", "method"),
        result.get("dataset"), result.get("method"), result.get("seed"), result.get("size"),
        budget.get("kind"), budget.get("value"), budget.get("used"), budget.get("steps"),
        result.get("status"), result.get("error"),
        (result.get("environment") or {}).get("device"), identity.get("hardware"), identity.get("precision"),
        result.get("created"),
    )


def _write(db: sqlite3.Connection, key: str, result: dict) -> None:
    db.execute(f"INSERT OR REPLACE INTO runs VALUES ({','.join('?' * 18)})", _row(key, result))
    db.execute("DELETE FROM metrics WHERE path = ?", (key,))
    if result.get("status") == "ok":
        for name, detail in (result.get("metric_details") or {}).items():
            db.execute("INSERT INTO metrics VALUES (?,?,?,?)",
                       (key, name, clean(detail.get("value")), detail.get("status")))


def index_key(out: Path, result_path: Path) -> str:
    return Path(result_path).parent.resolve().relative_to(Path(out).resolve()).as_posix()


def index_result(out: Path, path: Path, result: dict) -> None:
    key = index_key(out, path)
    connection = connect(out)
    try:
        def write():
            with connection:  # one transaction: the run row and its metric rows together
                _write(connection, key, result)
        _retry(write)
    finally:
        connection.close()


def rebuild(out: Path) -> int:
    """Make the index again from the result files; returns the number of runs indexed."""
    out = Path(out)
    results = load_results(out)
    connection = connect(out)
    try:
        def write():
            with connection:
                connection.execute("DELETE FROM runs")
                connection.execute("DELETE FROM metrics")
                for result in results:
                    _write(connection, index_key(out, Path(result.pop("_dir")) / RESULT_FILE), result)
        _retry(write)
    finally:
        connection.close()
    return len(results)


def check(out: Path) -> dict:
    """Compare the index with the result files: {"files", "rows", "missing", "stale"}."""
    out = Path(out)
    if not out.is_dir():
        raise BenchError(f"runs folder {out} does not exist")
    files = {index_key(out, p) for p in out.rglob(RESULT_FILE)}
    connection = connect(out)
    try:
        rows = {r[0] for r in _retry(lambda: connection.execute("SELECT path FROM runs").fetchall())}
    finally:
        connection.close()
    return {"files": len(files), "rows": len(rows), "missing": sorted(files - rows), "stale": sorted(rows - files)}


def remove(out: Path, folder: Path) -> None:
    """Drop a run folder's row (its result file is being replaced)."""
    key = Path(folder).resolve().relative_to(Path(out).resolve()).as_posix()
    connection = connect(out)
    try:
        def write():
            with connection:
                connection.execute("DELETE FROM runs WHERE path = ?", (key,))
                connection.execute("DELETE FROM metrics WHERE path = ?", (key,))
        _retry(write)
    finally:
        connection.close()
