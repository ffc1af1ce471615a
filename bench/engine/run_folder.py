"""A run's folder before and after the run: stale files, skip when finished, --force, --fresh, the write.

``--force`` never deletes first: the replacement trains beside the finished run and is swapped in whole.

``result.json`` is written after the files it describes; ``resume.pt`` goes once the result is written. The
index row is the launcher's to write, from the folder (``bench.launch.driver``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.engine.context import RunContext
from bench.engine.distributed import World
from bench.engine.resume import RESUME_FILE
from bench.errors import BenchError
from bench.progress import log
from bench.store import atomic, results
from bench.store.identity import RunIdentity

CHECKPOINT_FILE = "checkpoint.pt"
REPLACEMENT_SUFFIX = ".replacement"


def run_label(identity: RunIdentity) -> str:
    return f"{identity.method} seed {identity.seed}"


def finished_result(identity: RunIdentity, folder: Path, *, quiet: bool = False) -> dict | None:
    """The run's finished result in its folder (status ok, same run key), or None. A damaged ``result.json`` is
    said in one line (``quiet``: not said; the run itself says it when it comes)."""
    try:
        previous = results.read_result(folder, strict=quiet)
    except BenchError as error:  # a damaged result.json is redone, and said so
        if not quiet:
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
        return previous | {"_action": SKIPPED}
    return None


def replacement_folder(folder: Path) -> Path:
    """Where ``--force`` trains a finished run's replacement: beside it, hidden, swapped in when complete."""
    return folder.with_name(f".{folder.name}{REPLACEMENT_SUFFIX}")


def prepare_folder(identity: RunIdentity, context: RunContext) -> tuple[dict | None, Path]:
    """Rank 0's part before a run, under its lock: a swap a kill cut short undone, stale temp files, skip,
    --force, --fresh. Returns (the skipped result or None, the folder the run works in).

    ``--force`` on a finished run works in :func:`replacement_folder`: the finished result, checkpoint,
    samples and index row stay as they are until the replacement is complete (``write_run`` swaps it in).
    A replacement that a kill or a stop cut short is continued by the next ``--force``.
    """
    folder, label = identity.folder(context.out), run_label(identity)
    atomic.recover_folder(folder)
    atomic.clean_orphans(folder)
    replacement = replacement_folder(folder)
    skipped = skip_finished(identity, context)
    if skipped is not None:
        if replacement.exists():
            log(f"{label}: an unfinished --force replacement is in {replacement} (--force continues it)")
        return skipped, folder
    work = folder
    if context.force and finished_result(identity, folder) is not None:
        work = replacement
        log(f"{label}: --force: training a replacement beside the finished run in {folder}; the finished run "
            "stays until the replacement is complete")
        atomic.clean_orphans(work)
    elif replacement.exists():  # the run it was to replace is gone or unfinished: nothing to swap it in for
        shutil.rmtree(replacement, ignore_errors=True)
    resume_path = work / RESUME_FILE
    if context.fresh and resume_path.exists():
        log(f"{label}: --fresh: discarding the resume state in {work}")
        resume_path.unlink()
    return None, work


def write_run(result: dict, context: RunContext, identity: RunIdentity, work: Path, world: World) -> None:
    """Rank 0 writes the run's result. A ``--force``
    replacement (``work`` beside the run's folder) is swapped in only when it finished ``ok``; otherwise the
    finished run stays and the replacement is dropped (kept, to continue, when it was interrupted)."""
    if not world.is_main:
        return
    folder, label = identity.folder(context.out), run_label(identity)
    if work == folder:
        results.write_result(folder, result)
        if result["status"] == "ok":
            (folder / RESUME_FILE).unlink(missing_ok=True)
        return
    if result["status"] != "ok":
        if result["status"] != "interrupted":
            shutil.rmtree(work, ignore_errors=True)
        log(f"{label}: the --force replacement {result['status']}; the finished run in {folder} is kept as it was"
            + ("; --force continues the replacement" if result["status"] == "interrupted" else ""))
        return
    (work / RESUME_FILE).unlink(missing_ok=True)
    results.write_result(work, result)
    atomic.replace_folder(work, folder)
    log(f"{label}: replaced the finished run in {folder} (--force)")
