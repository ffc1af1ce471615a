"""A launcher's worker: one job (a run, or the reference rows) in a process of its own.

The worker builds its :class:`RunContext` from the :class:`RunConfig` (``prepare``: the driver
decoded the data first, so a worker on the same machine -- or sharing ``COLORBENCH_CACHE`` -- reads
the decode cache) and keeps it for the next job of the same config. It writes the run folder
under the shared ``--out`` (files only, as every run does): it returns the result, and the driver
indexes the folder. Its progress goes to the driver through ``send`` (a heartbeat every
``HEARTBEAT_S``), whose answer says whether the driver asks the runs to stop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import torch

from bench.engine.context import RunContext, prepare
from bench.engine.execute import execute_run
from bench.engine.run_folder import run_label
from bench.evaluation.references import execute_references
from bench.engine.training import Interrupted
from bench.environment import device_name
from bench.errors import BenchError
from bench.progress import set_quiet, set_reporter
from bench.store import results
from bench.store.identity import ANY_HARDWARE, RunIdentity, hardware_class

HEARTBEAT_S = 0.5  # how often a worker reports its progress and hears whether to stop

_context_cache: tuple[str, RunContext] | None = None  # the last config's context, for the next job


@dataclass(frozen=True)
class Job:
    """What a worker is given: one run, or (``identity=None``) the reference rows of the test set."""

    identity: RunIdentity | None = None

    @property
    def key(self) -> str:
        return self.identity.run_key if self.identity is not None else "references"

    @property
    def label(self) -> str:
        return run_label(self.identity) if self.identity is not None else "reference rows"


class Heartbeat:
    """Sends the latest progress of a job every HEARTBEAT_S; remembers when the driver says stop."""

    def __init__(self, key: str, send, local_stop: threading.Event | None = None):
        self.key, self.send = key, send
        self.stop = local_stop or threading.Event()
        self.latest: tuple | None = None
        self._done = threading.Event()
        # At once: the driver learns the job started (and may already be stopping). A driver that cannot be
        # reached at the first beat has stopped (its hub is gone): a job it cancelled too late -- e.g. a Ray task
        # started while another waited in its heartbeat -- must not run on unasked.
        self._beat(first=True)
        self._thread = threading.Thread(target=self._loop, name="colorbench-heartbeat", daemon=True)
        self._thread.start()

    def progress(self, description: str, completed: float, total: float | None, info: str) -> None:
        self.latest = (description, completed, total, info)

    def _beat(self, first: bool = False) -> None:
        try:
            if self.send(self.key, self.latest):
                self.stop.set()
        except Exception:  # later: a driver that cannot be reached cannot ask to stop either
            if first:
                self.stop.set()

    def _loop(self) -> None:
        while not self._done.wait(HEARTBEAT_S):
            self._beat()

    def stopping(self) -> bool:
        return self.stop.is_set()

    def close(self) -> None:
        self._done.set()
        self._thread.join()
        self._beat()  # the last progress, so the driver's line ends where the job did


def _context(config) -> RunContext:
    """``prepare(config)``, kept for the next job of the same config in this process."""
    global _context_cache
    key = repr(config)
    if _context_cache is None or _context_cache[0] != key:
        _context_cache = None  # free the previous data before decoding the next
        _context_cache = (key, prepare(config))
    return _context_cache[1]


def run_job(config, job: Job, *, device: torch.device | None = None, threads: int | None = None, send=None,
            local_stop: threading.Event | None = None):
    """Run ``job`` here; returns its result (a list of two for the reference rows), or None when the
    driver asked to stop before it started."""
    set_quiet(True)  # the driver shows progress and says what happened
    if threads:
        torch.set_num_threads(threads)
    if device is not None:
        config = replace(config, device=torch.device(device))
    heartbeat = Heartbeat(job.key, send or (lambda key, progress: False), local_stop)
    if heartbeat.stopping():
        heartbeat.close()
        return None
    set_reporter(heartbeat.progress)
    try:
        context = _context(config)
        context.should_stop = heartbeat.stopping
        if job.identity is None:
            return execute_references(context)
        here = hardware_class(device_name(context.device), 1)
        if job.identity.hardware not in (here, ANY_HARDWARE):  # a time budget buys other work on other hardware
            raise BenchError(f"this run was planned for {job.identity.hardware} but its worker has {here}: "
                             "run a grid on one kind of device (or a Ray cluster of one GPU model)")
        try:
            return execute_run(job.identity, context)
        except Interrupted as stop:  # its state is saved and its result says so
            return (stop.result or results.read_result(job.identity.folder(context.out))) | {"_action": "interrupted"}
    finally:
        set_reporter(None)
        heartbeat.close()
