"""``--launcher local``: the runs one after another in this process, or ``--jobs N`` at once.

With ``--jobs N`` each of N slots is a one-process ``ProcessPoolExecutor`` (spawned, so CUDA
works in it) that runs jobs one after another and keeps its decoded data between them. Slot k
trains on ``cuda:k`` (round-robin over the visible GPUs) or on the CPU with the torch threads of
a sequential run (``bench.launch.settings.cpu_threads``: the same numbers; ``--cpus-per-run`` splits the
cores instead). A slot whose process dies (killed, out of memory) is started again
and the job it held is tried once more, then recorded failed; the other slots go on.

Stopping: SIGTERM or the first Ctrl-C reaches the workers through a shared event (they ignore
SIGINT themselves, and take SIGTERM as the same request): queued runs are not started and
running ones save their state and say ``interrupted``; a second Ctrl-C ends the workers at once.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from bench.engine.execute import execute_run
from bench.evaluation.references import execute_references
from bench.engine.training import Interrupted
from bench.errors import BenchError
from bench.launch.driver import Driver, index_references, index_run, stopped_at_once
from bench.launch.settings import cpu_threads
from bench.launch.worker import Job, run_job
from bench.progress import log

POLL_S = 0.2  # how often the driver looks at progress and at finished jobs
RETRIES = 1  # a job whose worker process died is tried once more

# A worker process's own state (set once by _init_slot).
_slot: dict = {}


def _reference_rows(context) -> None:
    """The reference rows, scored and indexed in this process (several ranks: by one)."""
    if context.world.is_main:
        execute_references(context)
        index_references(context)


def run_sequential(context, identities, stop) -> list[dict]:
    """Today's behaviour: the reference rows, then every run in this process, in plan order."""
    _reference_rows(context)
    if stop():
        raise BenchError(f"stopped by {stop.signal} before the first run: run the same command again to go on")
    context.should_stop = stop
    results = []
    for identity in identities:
        try:
            results.append(execute_run(identity, context))
        except Interrupted:
            raise BenchError(f"stopped by {stop.signal or 'request'}: finished runs are kept and the "
                             "interrupted one resumes when you run the same command again") from None
        finally:
            if context.world.is_main:
                index_run(context, identity)
        if stop():
            raise BenchError(f"stopped by {stop.signal} before the next run: run the same command again to go on")
    return results


def slot_devices(config, jobs: int) -> list[tuple[torch.device, int | None]]:
    """(device, torch threads) of each slot: GPUs round-robin, or the CPU."""
    if config.device.type == "cuda":
        count = max(1, torch.cuda.device_count())
        return [(torch.device("cuda", k % count), None) for k in range(jobs)]
    return [(torch.device("cpu"), cpu_threads(config))] * jobs


def _init_slot(device: str, threads: int | None, messages, stop_event) -> None:
    """In the worker process: its device and threads, the channel to the driver, its signals."""
    local_stop = threading.Event()
    messages.cancel_join_thread()  # progress not yet read when the process ends is not worth waiting for
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver turns Ctrl-C into stop_event
    signal.signal(signal.SIGTERM, lambda signum, frame: local_stop.set())  # e.g. a scheduler's, to all processes
    _slot.update(device=device, threads=threads, messages=messages, stop_event=stop_event, local_stop=local_stop)


def _send(key: str, progress) -> bool:
    _slot["messages"].put((key, progress))
    return _slot["stop_event"].is_set()


def _slot_job(config, job: Job):
    return run_job(config, job, device=_slot["device"], threads=_slot["threads"], send=_send,
                   local_stop=_slot["local_stop"])


class Slot:
    def __init__(self, device: torch.device, threads: int | None, messages, stop_event):
        self.args = (str(device), threads, messages, stop_event)
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_slot,
                                   initargs=self.args)

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._start()

    def kill(self) -> None:
        # ProcessPoolExecutor has no public way to end a busy worker before Python 3.14.
        for process in list(getattr(self.pool, "_processes", {}).values()):
            process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)


def run_parallel(config, context, identities, stop, jobs: int) -> list[dict]:
    """``--jobs N``: N runs at once on this machine, the reference rows computed here."""
    _reference_rows(context)
    driver = Driver(context, identities, with_references=False)
    spawn = multiprocessing.get_context("spawn")
    messages, stop_event = spawn.Queue(), spawn.Event()
    with driver.display:
        pending = deque(driver.pending())
        if not pending:
            return driver.collected(stop)
        slots = [Slot(device, threads, messages, stop_event)
                 for device, threads in slot_devices(config, min(jobs, len(pending)))]
        threads = slots[0].args[1]
        log(f"--jobs {jobs}: {len(pending)} runs on " + ", ".join(str(s.args[0]) for s in slots)
            + (f", {threads} torch threads each" if threads else ""))
        if threads and threads * len(slots) > (os.cpu_count() or 1):
            log(f"note: {len(slots)} runs x {threads} threads on {os.cpu_count()} cores; --cpus-per-run "
                f"{max(1, (os.cpu_count() or 1) // len(slots))} would not oversubscribe them, but CPU numbers "
                "depend on the thread count (they would differ from a sequential run's)")
        running: dict = {}  # future -> (slot, job)
        drained = False  # every job came back: the workers can be waited for
        attempts: dict[str, int] = {}
        by_key = {job.key: job for job in pending}
        try:
            while pending or running:
                if stop() and not stop_event.is_set():
                    stop_event.set()
                    log(f"not starting {len(pending)} queued runs" if pending else "stopping the running runs")
                    pending.clear()
                busy = {slot for slot, _ in running.values()}
                for slot in (s for s in slots if s not in busy):
                    if not pending:
                        break
                    job = pending.popleft()
                    running[slot.pool.submit(_slot_job, config, job)] = (slot, job)
                done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                _drain(messages, by_key, driver)
                for future in done:
                    slot, job = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        slot.restart()
                        attempts[job.key] = attempts.get(job.key, 0) + 1
                        if attempts[job.key] <= RETRIES and not stop():
                            log(f"{job.label}: its worker process died; trying it once more")
                            pending.appendleft(job)
                        else:
                            driver.failed(job, f"worker lost: its process died {attempts[job.key]} times "
                                               "(killed, or out of memory)")
                        continue
                    except Exception as error:  # raised outside the run (a run's own errors are in its result)
                        driver.failed(job, f"{type(error).__name__}: {error}")
                        continue
                    if result is not None:
                        driver.finished(job, result)
                    else:  # asked to stop before it began
                        driver.display.finish(job)
            _drain(messages, by_key, driver)
            drained = True
        except KeyboardInterrupt:  # a second Ctrl-C: end the workers now
            for slot in slots:
                slot.kill()
            raise stopped_at_once() from None
        finally:
            for slot in slots:
                slot.pool.shutdown(wait=drained, cancel_futures=True)
    return driver.collected(stop)


def _drain(messages, by_key: dict, driver: Driver) -> None:
    """Progress the workers sent since the last look: each active run's line moves."""
    latest = {}
    while True:
        try:
            key, progress = messages.get_nowait()
        except queue.Empty:
            break
        latest[key] = progress
    for key, progress in latest.items():
        if key in by_key:
            driver.display.update(by_key[key], progress)
