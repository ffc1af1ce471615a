"""Shared test setup: every test runs offline, quiet, with its own caches (never the user's)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _first_holding(relative: str, *folders: str | Path | None) -> Path | None:
    return next((Path(f) for f in folders if f and (Path(f) / relative).is_file()), None)


# The real data some tests use: the user's data root and weight folder (read before they are replaced
# below), else ../shared beside the checkout. Tests never write there.
FLOWERS_ROOT = _first_holding("oxford17flowers/jpg/image_0001.jpg", os.environ.get("COLORBENCH_DATA"),
                              SHARED / "datasets")
WEIGHTS_DIR = _first_holding("alexnet-features-lpips.pth", os.environ.get("COLORBENCH_WEIGHTS"), SHARED / "weights")

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="colorbench-tests-"))
# Set before anything imports bench or torch.hub, so no real cache or network is touched.
os.environ["COLORBENCH_CACHE"] = str(_SESSION_TMP / "cache")
os.environ["COLORBENCH_DATA"] = str(_SESSION_TMP / "data")
os.environ["TORCH_HOME"] = str(_SESSION_TMP / "torch")
os.environ["COLORBENCH_OFFLINE"] = "1"
os.environ["COLORBENCH_QUIET"] = "1"
os.environ.pop("COLORBENCH_WEIGHTS", None)


def pytest_report_header(config):
    """The versions this run resolved (CI installs afresh each time), and any outside the tested ranges."""
    from bench.environment import installed_version, untested_packages

    names = ("torch", "torchvision", "timm", "lpips", "pytorch-fid", "numpy")
    lines = ["colorbench dependencies: " + ", ".join(f"{n} {installed_version(n)}" for n in names)]
    return lines + [f"untested: {p}" for p in untested_packages()]


@pytest.fixture(scope="session")
def shared_flowers_root() -> Path:
    """A data root holding oxford17flowers/jpg/: $COLORBENCH_DATA or ../shared/datasets."""
    if FLOWERS_ROOT is None:
        pytest.skip("real Oxford-17 flowers not found in $COLORBENCH_DATA or ../shared/datasets")
    return FLOWERS_ROOT


@pytest.fixture(scope="session")
def shared_weights_dir() -> Path:
    """A folder holding LPIPS's AlexNet trunk: $COLORBENCH_WEIGHTS or ../shared/weights."""
    if WEIGHTS_DIR is None:
        pytest.skip("alexnet-features-lpips.pth not found in $COLORBENCH_WEIGHTS or ../shared/weights")
    return WEIGHTS_DIR


@pytest.fixture
def run_cli(capsys):
    """Run the `bench` CLI in-process: returns (exit code, stdout, stderr)."""
    from bench.cli import main

    def run(*argv: str):
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def extra_methods():
    """Register method classes as an extra in-process plugin for one test."""
    import types

    from bench import registry
    from bench.api import hookimpl
    from bench.plugins import get_plugin_manager

    plugins = []

    def add(*classes):
        plugin = types.SimpleNamespace(register_methods=hookimpl(lambda register: [register(c) for c in classes]))
        get_plugin_manager().register(plugin)
        plugins.append(plugin)
        registry.registries.cache_clear()

    yield add
    for plugin in plugins:
        get_plugin_manager().unregister(plugin)
    registry.registries.cache_clear()


@contextlib.contextmanager
def installed_plugin(site: Path, module: str, source: str):
    """``source`` as an installed plugin package in ``site``: an entry point (for child processes with
    ``site`` on PYTHONPATH) and registered in this process too. Yields ``site``."""
    import importlib.util

    from bench import registry
    from bench.plugins import get_plugin_manager

    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[colorbench]\n{module} = {module}\n")
    get_plugin_manager()  # built first, so this process does not also load the entry point
    spec = importlib.util.spec_from_file_location(module, site / f"{module}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    get_plugin_manager().register(loaded)
    registry.registries.cache_clear()
    try:
        yield site
    finally:
        get_plugin_manager().unregister(loaded)
        registry.registries.cache_clear()


@pytest.fixture(scope="session")
def install_plugin():
    """``installed_plugin`` for fixtures of any scope."""
    return installed_plugin
