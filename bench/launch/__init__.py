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

from bench.launch.local import run_parallel, run_sequential
from bench.launch.ray import run_ray
from bench.launch.settings import LAUNCHERS, check, cpu_threads

__all__ = ["LAUNCHERS", "check", "cpu_threads", "launch"]


def launch(config, context, identities, stop) -> list[dict]:
    """Run ``identities`` (and the reference rows) with the configured launcher; results in plan order."""
    if config.launcher == "ray":
        return run_ray(config, context, identities, stop)
    if config.jobs > 1:
        return run_parallel(config, context, identities, stop, config.jobs)
    if config.cpus_per_run and config.device.type == "cpu":
        torch.set_num_threads(config.cpus_per_run)
    return run_sequential(context, identities, stop)
