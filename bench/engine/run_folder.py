"""A run's folder before and after the run: stale files, skip when finished, --force, --fresh, the write.

``result.json`` is written after the files it describes and the index row after it; ``resume.pt`` goes
once the result is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.engine.context import RunContext
from bench.engine.distributed import World
from bench.engine.resume import RESUME_FILE
from bench.errors import BenchError
from bench.progress import log
from bench.store import index, results
from bench.store.identity import RunIdentity

CHECKPOINT_FILE = "checkpoint.pt"


def run_label(identity: RunIdentity) -> str:
    return f"{identity.method} seed {identity.seed}"


def clear_run(folder: Path, context: RunContext) -> None:
    """--force: the previous result of this run goes (said in the log), with its index row."""
    for name in (results.RESULT_FILE, CHECKPOINT_FILE, RESUME_FILE):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "samples", ignore_errors=True)
    if context.write_index:  # else the driver replaces the row with the new result
        index.remove(context.out, folder)


def finished_result(identity: RunIdentity, folder: Path) -> dict | None:
    """The run's finished result in its folder (status ok, same run key), or None."""
    try:
        previous = results.read_result(folder)
    except BenchError as error:  # a damaged result.json is redone, and said so
        log(f"{run_label(identity)}: {error}; running it again")
        return None
    if previous and previous.get("status") == "ok" and previous.get("run_key") == identity.run_key:
        return previous
    return None


SKIPPED = "skipped (already done)"


def skip_finished(identity: RunIdentity, context: RunContext) -> dict | None:
    """The result of a finished run that is to be skipped (no --force), said in the log; else None."""
    folder = identity.folder(context.out)
    previous = None if context.force else finished_result(identity, folder)
    if previous is not None:
        log(f"{run_label(identity)}: already done in {folder} (skipped; --force runs it again)")
        scored = previous.get("test_time") or {}
        if scored.get("random") and scored.get("draws", 1) < context.test_draws:
            log(f"{run_label(identity)}: scored on {scored.get('draws', 1)} test-time draw(s), not "
                f"--test-draws {context.test_draws}; --force trains and scores it again")
        (folder / RESUME_FILE).unlink(missing_ok=True)  # an orphan: killed after its result was written
        if context.write_index:  # the index is a cache of the files: a missing or stale row is written
            index.sync_result(context.out, folder / results.RESULT_FILE, previous)
        return previous | {"_action": SKIPPED}
    return None


def prepare_folder(identity: RunIdentity, context: RunContext) -> dict | None:
    """Rank 0's part before a run: stale temp files, skip, --force, --fresh. The skipped result, or None."""
    folder, label = identity.folder(context.out), run_label(identity)
    results.clean_orphans(folder)
    skipped = skip_finished(identity, context)
    if skipped is not None:
        return skipped
    if context.force and finished_result(identity, folder) is not None:
        log(f"{label}: replacing the finished run in {folder} (--force)")
        clear_run(folder, context)
    resume_path = folder / RESUME_FILE
    if context.fresh and resume_path.exists():
        log(f"{label}: --fresh: discarding the resume state in {folder}")
        resume_path.unlink()
    return None


def write_run(result: dict, context: RunContext, folder: Path, world: World) -> None:
    if not world.is_main:
        return
    results.write_result(context.out, folder, result, index=context.write_index)
    if result["status"] == "ok":
        (folder / RESUME_FILE).unlink(missing_ok=True)
