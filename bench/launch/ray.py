"""``--launcher ray``: every run of the grid is a Ray task, on one machine or a cluster.

Each run (its :class:`RunIdentity`) is one task asking for one GPU -- Ray gives it its own
(``CUDA_VISIBLE_DEVICES``) -- and ``--cpus-per-run`` CPUs (default 1), or on a CPU-only cluster as
many CPUs as it has torch threads (``bench.launch.settings.cpu_threads``: by default this process's, so
the numbers equal a sequential run's). The
reference rows are one more task. With no ``--ray-address`` Ray starts on this machine and uses
every GPU of it, one run per GPU; ``--ray-address auto|HOST:PORT`` joins a running cluster, whose
nodes must all see ``--out`` (and the data, weights and, best, ``COLORBENCH_CACHE``) at the same
paths.

Workers write their run folders and return the result; the driver indexes it. A task whose
worker dies (node lost, out of memory, killed) is retried once by Ray (``max_retries=1``; a retry
resumes from the run's last checkpoint), then recorded ``failed`` with Ray's reason; a run that
raises is recorded failed by the run itself and the others go on. Ctrl-C (or SIGTERM) on the
driver cancels the tasks not yet started and asks running ones to save their state and stop
(they say ``interrupted``); a second Ctrl-C cancels them at once. Finished runs are never
touched, and running the same command again resumes.
"""

from __future__ import annotations

import signal
import threading

import torch

from bench.errors import BenchError
from bench.launch.driver import Driver, stopped_at_once
from bench.launch.settings import cpu_threads, require_ray
from bench.launch.worker import Job, run_job
from bench.progress import log

POLL_S = 0.25  # how often the driver looks at finished tasks and at progress
RETRIES = 1  # Ray runs a task again once when its worker dies


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (None: start Ray here); True when this call started Ray."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    main = threading.current_thread() is threading.main_thread()
    ours = signal.getsignal(signal.SIGTERM) if main else None
    try:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "start Ray on this machine" if address is None else f"connect to the Ray cluster at {address}"
        raise BenchError(f"--ray-address {address or '(none)'}: cannot {where}: "
                         f"{' '.join(str(error).split())}") from None
    finally:
        if main and ours is not None:  # ray.init makes SIGTERM exit at once; ours saves the runs first
            signal.signal(signal.SIGTERM, ours)
    return True


class Hub:
    """A Ray actor between the driver and the workers: their progress, and the driver's stop."""

    def __init__(self):
        self.progress: dict = {}
        self.stopping = False

    def report(self, key: str, progress) -> bool:
        self.progress[key] = progress
        return self.stopping

    def snapshot(self) -> dict:
        return dict(self.progress)

    def stop(self) -> None:
        self.stopping = True


class _Sender:
    """A task's heartbeat to the hub that never blocks: Ray lends a task's CPUs to queued tasks while it waits
    in ``ray.get``, which would start a run the driver still holds queued (and may be about to cancel). Each
    beat sends, and reads the answer to the previous beat only once it has arrived."""

    def __init__(self, hub):
        self.hub, self.pending, self.stopping = hub, None, False

    def __call__(self, key: str, progress) -> bool:
        import ray

        if self.pending is not None:
            ready, _ = ray.wait([self.pending], timeout=0)
            if ready:
                self.stopping = self.stopping or bool(ray.get(ready[0]))  # raises when the hub is gone
                self.pending = None
        reply = self.hub.report.remote(key, progress)
        self.pending = self.pending or reply
        return self.stopping


def _task(config, job: Job, hub, threads: int | None):
    device = torch.device("cuda") if config.device.type == "cuda" else torch.device("cpu")  # Ray's GPU is cuda:0
    return run_job(config, job, device=device, threads=threads, send=_Sender(hub))


def _device_name() -> str:
    from bench.environment import device_name

    return device_name(torch.device("cuda"))


def task_resources(config) -> dict:
    if config.device.type == "cuda":
        return {"num_gpus": 1, "num_cpus": config.cpus_per_run or 1}
    return {"num_gpus": 0, "num_cpus": cpu_threads(config)}


def cluster_device(name: str, address: str | None) -> tuple[torch.device, str | None]:
    """``--device`` for a Ray launch: (device, its name when this machine cannot see it, else None).

    A driver without a GPU (a cluster's head node, say) still plans GPU runs when the cluster has
    GPUs: ``auto`` or ``cuda`` then means the workers' GPUs, named by one of them.
    """
    from bench.environment import resolve_device

    if name == "cpu" or torch.cuda.is_available() or address is None:  # Ray started here has this machine's GPUs
        return resolve_device(name), None
    if name not in ("auto", "cuda"):
        resolve_device(name)  # bad names get their usual one-line error
        raise BenchError(f"--device {name}: with --launcher ray use --device cuda (Ray gives each run a GPU)")
    ray = require_ray()
    connect(address)
    if not ray.cluster_resources().get("GPU"):
        if name == "cuda":
            raise BenchError("--device cuda: neither this machine nor the Ray cluster has a GPU (use --device cpu)")
        return torch.device("cpu"), None
    return torch.device("cuda"), ray.get(ray.remote(num_gpus=1)(_device_name).remote())


def _check_resources(ray, config) -> None:
    """The cluster can place one run now (else its tasks would wait forever)."""
    have = ray.cluster_resources()
    wanted = task_resources(config)
    if wanted["num_gpus"] and have.get("GPU", 0) < 1:
        raise BenchError("--device cuda: the Ray cluster has no GPU (use --device cpu, or add GPU nodes)")
    if have.get("CPU", 0) < wanted["num_cpus"]:
        raise BenchError(f"--cpus-per-run {wanted['num_cpus']}: the Ray cluster has {have.get('CPU', 0):g} CPUs")


def _reason(ray, error: Exception) -> str:
    """One line on why a task gave no result."""
    if isinstance(error, ray.exceptions.RayTaskError):  # raised in the worker, outside the run itself
        cause = getattr(error, "cause", None) or error
        return " ".join(f"{type(cause).__name__}: {cause}".split())[:500]
    first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return f"worker lost ({type(error).__name__}) after {RETRIES + 1} tries: {first.strip()[:400]}"


def run_ray(config, context, identities, stop) -> list[dict]:
    ray = require_ray()
    started_here = connect(config.ray_address)
    try:
        _check_resources(ray, config)
        driver = Driver(context, identities, with_references=True)
        with driver.display:
            todo = driver.pending()
            if todo:
                _run_tasks(ray, config, driver, todo, stop)
        return driver.collected(stop)
    finally:
        if started_here:
            ray.shutdown()


def _run_tasks(ray, config, driver: Driver, todo: list[Job], stop) -> None:
    hub = ray.remote(num_cpus=0)(Hub).remote()
    threads = cpu_threads(config) if config.device.type == "cpu" else None
    task = ray.remote(_task).options(max_retries=RETRIES, **task_resources(config))
    refs = {task.remote(config, job, hub, threads): job for job in todo}
    by_key = {job.key: job for job in todo}
    resources = ray.cluster_resources()
    log(f"ray: {len(refs)} tasks on a cluster of {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs, "
        f"each asking for {task_resources(config)}")
    stopping = False
    try:
        while refs:
            progress = ray.get(hub.snapshot.remote())
            if stop() and not stopping:
                stopping = True
                ray.get(hub.stop.remote())
                progress = ray.get(hub.snapshot.remote())
                queued = [ref for ref, job in refs.items() if job.key not in progress]
                for ref in queued:
                    ray.cancel(ref)
                log(f"cancelled {len(queued)} queued runs; the running ones save their state and stop")
            for key, snapshot in progress.items():
                driver.display.update(by_key[key], snapshot)
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=POLL_S)
            for ref in ready:
                job = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    driver.display.finish(job)  # never started: its folder is as it was
                    continue
                except ray.exceptions.RayError as error:
                    driver.failed(job, _reason(ray, error))
                    continue
                if result is not None:
                    driver.finished(job, result)
                else:
                    driver.display.finish(job)
    except KeyboardInterrupt:  # a second Ctrl-C: stop the tasks now
        for ref in refs:
            ray.cancel(ref, force=True)
        raise stopped_at_once() from None
    finally:
        ray.kill(hub)
