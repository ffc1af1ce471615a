"""The hooks a colorbench plugin can implement.

A plugin is any module (or object) with functions decorated by ``bench.api.hookimpl``. Built-in
plugins are listed in ``bench.plugins.BUILTIN_PLUGINS``; third-party plugins are found through the
``colorbench`` entry-point group, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points.colorbench]
    my_colorizer = "my_colorizer"

Each hook receives a ``register`` callable and calls it once per thing it provides.
"""

import pluggy

hookspec = pluggy.HookspecMarker("colorbench")
hookimpl = pluggy.HookimplMarker("colorbench")


@hookspec
def register_methods(register):
    """Register colorization methods.

    Call ``register(MethodClass)`` for each :class:`bench.api.Method` subclass. The method is listed
    under ``MethodClass.name``; its options are the fields of ``MethodClass.Options``.
    """


@hookspec
def register_datasets(register):
    """Register datasets.

    Call ``register(DatasetClass)`` for each :class:`bench.api.Dataset` subclass, listed under
    ``DatasetClass.name``.
    """


@hookspec
def register_metrics(register):
    """Register evaluation metrics.

    Call ``register(MetricClass)`` for each :class:`bench.api.Metric` subclass, listed under
    ``MetricClass.name``.
    """
