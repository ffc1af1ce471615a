"""The plugin manager: built-in plugins and entry-point plugins are loaded the same way."""

from __future__ import annotations

import importlib
import importlib.metadata
from functools import lru_cache

import pluggy

from bench import hookspecs
from bench.errors import BenchError

ENTRY_POINT_GROUP = "colorbench"

# Built-in plugins: modules that implement the hooks in bench.hookspecs, exactly as a third-party
# package would.
BUILTIN_PLUGINS = (
    "bench.methods.baseline",
    "bench.methods.pix2pix",
    "bench.methods.pix2pix_resnet18",
    "bench.methods.cyclegan",
    "bench.datasets.sample",
    "bench.datasets.flowers",
    "bench.datasets.torchvision_sets",
    "bench.datasets.folder",
    "bench.datasets.coco",
    "bench.metrics.fidelity",
    "bench.metrics.perceptual",
    "bench.metrics.distribution",
    "bench.metrics.colourfulness",
    "bench.metrics.ab_histogram",
)

BUILTIN_ORIGIN = "colorbench (built-in)"


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("colorbench")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    _check_entry_points()
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def _check_entry_points() -> None:
    """Import every third-party plugin first, so a broken one is named in a one-line error."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception as error:
            raise BenchError(
                f"colorbench plugin {entry_point.name!r} ({entry_point.value}) failed to load: "
                f"{type(error).__name__}: {error} — fix or uninstall it"
            ) from None


def plugin_origins(pm: pluggy.PluginManager) -> dict[str, str]:
    """Map plugin name -> where it came from ("colorbench (built-in)" or "<dist> <version>")."""
    origins = {name: BUILTIN_ORIGIN for name in BUILTIN_PLUGINS}
    for plugin, dist in pm.list_plugin_distinfo():
        name = pm.get_name(plugin)
        origins[name] = f"{dist.metadata['name']} {dist.version}"
    return origins
