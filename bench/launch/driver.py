"""The driver's side of a launch: what workers return becomes results and index rows.

The SQLite index is written here only, from the run folders: :func:`index_run` and
:func:`index_references` read what a run left on disk (a worker, or the sequential launcher, has
written its ``result.json``) and write its row when missing or stale -- for every launcher. A job whose
worker was lost, or that raised outside the run, is recorded ``failed`` with the reason. Finished runs are skipped before
anything is submitted. The live display -- one line per active run and an overall bar -- goes
to stderr (nothing when quiet).
"""

from __future__ import annotations

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from bench.engine.context import RunContext
from bench.engine.execute import record_failure
from bench.engine.run_folder import skip_finished
from bench.evaluation.references import REFERENCES
from bench.errors import BenchError
from bench.launch.worker import Job
from bench.progress import console, is_quiet, log
from bench.store import results
from bench.store.identity import ReferenceIdentity, RunIdentity
from bench.store.index import sync_folder

OVERALL = "runs"


def index_run(context: RunContext, identity: RunIdentity) -> None:
    """The run's index row, from its folder: the index caches the file, so a run not written this time (skipped,
    locked, a ``--force`` replacement that failed) leaves the row of what is on disk."""
    sync_folder(context.out, identity.folder(context.out))


def index_references(context: RunContext) -> None:
    """The reference rows' index rows, from their folders."""
    options = context.dataset.options.to_dict()
    for reference in REFERENCES:
        sync_folder(context.out, ReferenceIdentity(context.dataset.name, options, context.size, reference).folder(context.out))


def stopped_at_once() -> BenchError:
    """What a second Ctrl-C says, once the launcher has ended its workers or tasks."""
    return BenchError("stopped at once (second Ctrl-C): finished runs are kept; run the same command again to "
                      "resume the others from their last checkpoints")


class LiveDisplay:
    """One live line per active job (its phase, a bar, the latest losses) and an overall bar."""

    def __init__(self, total: int):
        self.quiet = is_quiet()
        self.lines: dict[str, int] = {}
        self.done: set[str] = set()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console)
        self.overall = self.progress.add_task(OVERALL, total=total, info="")

    def __enter__(self):
        if not self.quiet:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def update(self, job: Job, snapshot: tuple | None) -> None:
        if job.key in self.done:  # a last heartbeat that came after the result
            return
        if job.key not in self.lines:
            self.lines[job.key] = self.progress.add_task(job.label, total=None, info="")
        if snapshot is not None:
            description, completed, total, info = snapshot
            phase = description.removesuffix(f" {job.label}")
            self.progress.update(self.lines[job.key], description=f"{job.label}: {phase}", completed=completed,
                                 total=total, info=info)

    def finish(self, job: Job) -> None:
        self.done.add(job.key)
        if job.key in self.lines:
            self.progress.remove_task(self.lines.pop(job.key))
        self.progress.advance(self.overall)


class Driver:
    """Collects a launch's results in plan order; indexes them; records lost jobs."""

    def __init__(self, context: RunContext, identities: list, with_references: bool):
        self.context = context
        self.jobs = ([Job()] if with_references else []) + [Job(identity) for identity in identities]
        self.results: dict[str, dict] = {}
        self.display = LiveDisplay(len(self.jobs))

    def pending(self) -> list[Job]:
        """The jobs to submit: finished runs are taken as they are (skipped, and said so)."""
        todo = []
        for job in self.jobs:
            done = skip_finished(job.identity, self.context) if job.identity is not None else None
            if done is None:
                todo.append(job)
            else:
                index_run(self.context, job.identity)
                self.results[job.key] = done
                self.display.finish(job)
        return todo

    def finished(self, job: Job, result) -> None:
        """A worker's result: its folder indexed here."""
        if job.identity is None:
            index_references(self.context)
        else:
            index_run(self.context, job.identity)
            self.results[job.key] = result
            action = "" if result["_action"] == result["status"] else f"{result['_action']} -> "
            log(f"{job.label}: {action}{results.status_text(result)}")
        self.display.finish(job)

    def failed(self, job: Job, error: str) -> None:
        """A job that returned no result: a run is recorded failed with ``error`` (and indexed)."""
        if job.identity is None:
            log(f"reference rows: {error}")
        else:
            self.results[job.key] = record_failure(job.identity, self.context, error)
            index_run(self.context, job.identity)
        self.display.finish(job)

    def collected(self, stop) -> list[dict]:
        """Every run's result in plan order; after a stop, a one-line error (finished runs are kept)."""
        if stop():
            raise BenchError(f"stopped by {stop.signal}: finished runs are kept and interrupted ones resume "
                             "when you run the same command again")
        return [self.results[job.key] for job in self.jobs if job.identity is not None]
