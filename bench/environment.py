"""What a result was produced with: versions, device, git commit; and whether those versions were tested."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import torch

import bench


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the colorbench checkout, when it runs from one."""
    source = Path(bench.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU: {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"CPU: {platform.processor() or platform.machine()}"


def resolve_device(name: str) -> torch.device:
    from bench.errors import BenchError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchError(f"bad device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA GPU is available here (use --device cpu or auto)")
    if device.type not in ("cpu", "cuda"):
        raise BenchError(f"bad device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


DISTRIBUTION = "colorbench"


@lru_cache(maxsize=1)
def requirements() -> tuple:
    """colorbench's runtime requirements (packaging ``Requirement``s) as installed: pyproject.toml's ranges
    are the ones the suite was run with, so they are the single statement of what is tested."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return ()
    parsed = []
    for line in declared:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            parsed.append(requirement)
    return tuple(parsed)


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """Every runtime dependency's installed version, by distribution name."""
    return {r.name: installed_version(r.name) for r in requirements()}


def untested_packages() -> list[str]:
    """Installed dependencies outside the ranges the suite was run with, e.g. ``torch 2.15.0 (tested >=2.6,<2.15)``."""
    found = []
    for requirement in requirements():
        version = installed_version(requirement.name)
        if version is not None and requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement.name} {version} (tested {requirement.specifier})")
    return found


def untested_warning() -> str | None:
    """One line for the log when this run uses versions colorbench was not tested with."""
    found = untested_packages()
    if not found:
        return None
    return (f"warning: running with untested versions: {'; '.join(found)} -- results may differ from "
            f"published boards (see pyproject.toml for the tested ranges)")


def environment(device: torch.device) -> dict:
    import numpy
    import timm
    import torchvision

    return {
        "colorbench": bench.__version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "device": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "packages": package_versions(),  # every runtime dependency, by distribution name
    }
