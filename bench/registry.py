"""Registries of methods, datasets and metrics, filled by the plugins' ``register_*`` hooks.

In the spirit of timm: ``list_methods("pix2pix*")`` filters by pattern and
``create_method(name, size=64, device="cpu", lambda_l1=50)`` builds one.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from functools import lru_cache

from bench.errors import BenchError
from bench.plugins import get_plugin_manager, plugin_origins

KINDS = ("method", "dataset", "metric")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    cls: type
    plugin: str  # where it came from: "colorbench (built-in)" or "<distribution> <version>"

    @property
    def description(self) -> str:
        return getattr(self.cls, "description", "") or (self.cls.__doc__ or "").strip().split("\n")[0]


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, cls: type, plugin: str) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise BenchError(f"plugin {plugin!r} registered a {self.kind} class {cls.__qualname__} without a `name`")
        if name in self._entries:
            other = self._entries[name].plugin
            raise BenchError(f"{self.kind} {name!r} is registered twice (by {other} and by {plugin})")
        self._entries[name] = Entry(self.kind, name, cls, plugin)

    def names(self, pattern: str = "*") -> list[str]:
        return [name for name in self._entries if fnmatch.fnmatchcase(name, pattern)]

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise BenchError(
                f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self._entries) or 'none'} (see `bench list`)."
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries


@lru_cache(maxsize=1)
def registries() -> dict[str, Registry]:
    """Call every plugin's register_* hooks once, remembering which plugin registered what."""
    pm = get_plugin_manager()
    origins = plugin_origins(pm)
    result = {kind: Registry(kind) for kind in KINDS}
    for kind in KINDS:
        hook = getattr(pm.hook, f"register_{kind}s")
        # One call per implementation, so each registration is attributed to its plugin.
        for impl in hook.get_hookimpls():
            origin = origins.get(impl.plugin_name, impl.plugin_name)
            impl.function(register=lambda cls, _origin=origin, _kind=kind: result[_kind].add(cls, _origin))
    return result


def methods() -> Registry:
    return registries()["method"]


def datasets() -> Registry:
    return registries()["dataset"]


def metrics() -> Registry:
    return registries()["metric"]


def list_methods(pattern: str = "*") -> list[str]:
    return methods().names(pattern)


def list_datasets(pattern: str = "*") -> list[str]:
    return datasets().names(pattern)


def list_metrics(pattern: str = "*") -> list[str]:
    return metrics().names(pattern)


def create_method(name: str, *, size: int, device="cpu", weights=None, **options):
    """Build a registered method with its options given as keyword arguments (its ``check_size`` first)."""
    from bench.method import MethodContext

    cls = methods().get(name).cls
    method_options = cls.Options.from_dict(options)
    cls.check_size(size, method_options)
    return cls(method_options, MethodContext(size=size, device=device, weights=weights))
