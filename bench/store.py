"""Where results live: ``<out>/<dataset>/<method>/seed<k>/result.json`` plus an SQLite index.

The JSON files are the record; ``<out>/runs.sqlite`` indexes them for queries (it is updated
with every result written).
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from bench.errors import BenchError

RESULT_FILE = "result.json"
INDEX_FILE = "runs.sqlite"
SCHEMA = 1

_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    path TEXT PRIMARY KEY,
    dataset TEXT, method TEXT, seed INTEGER, size INTEGER,
    budget_kind TEXT, budget_value REAL, budget_used REAL, steps INTEGER,
    status TEXT, error TEXT, device TEXT, created TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    path TEXT, name TEXT, value REAL, status TEXT,
    PRIMARY KEY (path, name)
);
"""


def run_dir(out: Path, dataset: str, method: str, seed: int) -> Path:
    return Path(out) / safe_name(dataset) / safe_name(method) / f"seed{seed}"


def safe_name(name: str) -> str:
    """A path component that cannot escape the output folder."""
    cleaned = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name).strip(".")
    return cleaned or "_"


def _clean(value):
    """JSON without NaN/Infinity (not valid JSON): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_result(out: Path, directory: Path, result: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RESULT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_clean(result), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    index_result(out, path, result)
    return path


def connect(out: Path) -> sqlite3.Connection:
    Path(out).mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(Path(out) / INDEX_FILE)
    connection.executescript(_DDL)
    return connection


def index_result(out: Path, path: Path, result: dict) -> None:
    key = str(path.parent.resolve().relative_to(Path(out).resolve()))
    budget = result.get("budget", {})
    with connect(out) as db:
        db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                key, result.get("dataset"), result.get("method"), result.get("seed"), result.get("size"),
                budget.get("kind"), budget.get("value"), budget.get("used"), budget.get("steps"),
                result.get("status"), result.get("error"),
                result.get("environment", {}).get("device"), result.get("created"),
            ),
        )
        db.execute("DELETE FROM metrics WHERE path = ?", (key,))
        for name, detail in result.get("metric_details", {}).items():
            db.execute(
                "INSERT INTO metrics VALUES (?,?,?,?)", (key, name, _clean(detail.get("value")), detail.get("status"))
            )
    db.close()


def load_results(runs_dir: Path) -> list[dict]:
    """Every result.json below ``runs_dir``, each with ``_dir`` (its folder) added."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise BenchError(f"runs folder {runs_dir} does not exist")
    results = []
    for path in sorted(runs_dir.rglob(RESULT_FILE)):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise BenchError(f"cannot read {path}: {error}") from None
        if not isinstance(result, dict) or "method" not in result or "dataset" not in result:
            raise BenchError(f"{path} is not a colorbench result (no method/dataset)")
        result["_dir"] = str(path.parent)
        results.append(result)
    return results
