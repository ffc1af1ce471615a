"""Launcher settings: which launchers exist, the one-line errors for their options, the torch threads of a CPU run."""

from __future__ import annotations

import torch

from bench.errors import BenchError

LAUNCHERS = ("local", "ray")
INSTALL = "pip install 'colorbench[ray]'"


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
        require_ray()


def cpu_threads(config) -> int:
    """Torch threads of a CPU run: --cpus-per-run, else this process's (a sequential run's: same numbers)."""
    return config.cpus_per_run or torch.get_num_threads()


def require_ray():
    try:
        import ray
    except ImportError:
        raise BenchError(f"--launcher ray needs Ray, which is not installed: {INSTALL}") from None
    return ray
