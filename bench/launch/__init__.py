"""Launchers: who runs the planned grid of runs, and where. No scheduler of our own.

``bench run`` plans one :class:`~bench.store.identity.RunIdentity` per method x seed and hands
the list to a launcher:

* ``local`` (the default): one run after another in this process, as always;
* ``local --jobs N``: N runs at once on this machine, one process each (one per GPU, or the CPU
  cores split between them) -- ``bench.launch.local``;
* ``ray``: each run a Ray task on this machine or a cluster -- ``bench.launch.ray``.

Every launcher runs each identity through the same ``bench.engine.execute.execute_run``. On the
CPU the numbers also depend on the number of torch threads (sums are split differently), so a
CPU run uses as many as this process does -- what the sequential run uses -- unless
``--cpus-per-run`` says otherwise: the same seed and step budget then give the same numbers however
the grid is launched. Workers write their run folders under the shared ``--out``; only the driver
writes the SQLite index.
"""

from __future__ import annotations

import torch

from bench.errors import BenchError

LAUNCHERS = ("local", "ray")


def check(config) -> None:
    """One-line errors for launcher settings, before anything is written (part of ``validate``)."""
    if config.launcher not in LAUNCHERS:
        raise BenchError(f"--launcher {config.launcher!r}: choose {' or '.join(LAUNCHERS)}")
    if config.jobs < 1:
        raise BenchError(f"--jobs {config.jobs}: at least 1")
    if config.cpus_per_run is not None and config.cpus_per_run < 1:
        raise BenchError(f"--cpus-per-run {config.cpus_per_run}: at least 1")
    if config.budget.kind == "time":
        devices = torch.cuda.device_count() if config.device.type == "cuda" and config.device.index is None else 1
        sharing = (config.launcher == "local" and config.jobs > devices) or (
            config.launcher == "ray" and config.device.type == "cpu")
        if sharing:
            raise BenchError(f"a time budget ({config.budget.label}) with runs sharing a device: each run would get "
                             f"part of it and record slower training; use one run per device "
                             f"({'--jobs ' + str(devices) if config.launcher == 'local' else 'GPUs'}) or a step or "
                             f"compute budget (500steps, 20epochs)")
    if config.launcher == "local":
        if config.ray_address is not None:
            raise BenchError(f"--ray-address {config.ray_address}: only with --launcher ray")
        if config.jobs > 1 and config.device.type == "cuda" and config.device.index is not None:
            raise BenchError(f"--jobs {config.jobs} with --device {config.device}: parallel runs spread over every "
                             "visible GPU; choose them with CUDA_VISIBLE_DEVICES and use --device cuda")
    else:
        if config.jobs > 1:
            raise BenchError(f"--jobs {config.jobs}: for --launcher local; Ray runs one run per GPU "
                             "(or per --cpus-per-run CPUs)")
        if config.device.type == "cuda" and config.device.index is not None:
            raise BenchError(f"--device {config.device}: with --launcher ray use --device cuda (Ray gives each "
                             "run a GPU of its own)")
        from bench.launch.ray import require_ray

        require_ray()


def cpu_threads(config) -> int:
    """Torch threads of a CPU run: --cpus-per-run, else this process's (a sequential run's: same numbers)."""
    return config.cpus_per_run or torch.get_num_threads()


def launch(config, context, identities, stop) -> list[dict]:
    """Run ``identities`` (and the reference rows) with the configured launcher; results in plan order."""
    if config.launcher == "ray":
        from bench.launch.ray import run_ray

        return run_ray(config, context, identities, stop)
    from bench.launch.local import run_parallel, run_sequential

    if config.jobs > 1:
        return run_parallel(config, context, identities, stop, config.jobs)
    if config.cpus_per_run and config.device.type == "cpu":
        torch.set_num_threads(config.cpus_per_run)
    return run_sequential(context, identities, stop)
