"""The plugin manager: built-in plugins and entry-point plugins are loaded the same way."""

from __future__ import annotations

import importlib
from functools import lru_cache

import pluggy

from bench import hookspecs

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
    "bench.metrics.fidelity",
    "bench.metrics.perceptual",
    "bench.metrics.distribution",
    "bench.metrics.colourfulness",
)

BUILTIN_ORIGIN = "colorbench (built-in)"


def _optional_builtins():
    """Built-in modules that exist (lets the suite be developed piece by piece)."""
    for module_name in BUILTIN_PLUGINS:
        try:
            yield module_name, importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # a real missing dependency inside the plugin
                raise


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("colorbench")
    pm.add_hookspecs(hookspecs)
    for module_name, module in _optional_builtins():
        pm.register(module, name=module_name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def plugin_origins(pm: pluggy.PluginManager) -> dict[str, str]:
    """Map plugin name -> where it came from ("colorbench (built-in)" or "<dist> <version>")."""
    origins = {name: BUILTIN_ORIGIN for name in BUILTIN_PLUGINS}
    for plugin, dist in pm.list_plugin_distinfo():
        name = pm.get_name(plugin)
        origins[name] = f"{dist.metadata['name']} {dist.version}"
    return origins
