"""Everything a colorbench plugin needs, in one import.

    from bench.api import hookimpl, Method, MethodOptions, Batch

    class MyColorizer(Method):
        name = "my-colorizer"
        ...

    @hookimpl
    def register_methods(register):
        register(MyColorizer)
"""

from bench.color import (
    AB_SCALE,
    L_SCALE,
    lab_to_rgb,
    normalized_lab_to_rgb,
    rgb_to_lab,
    rgb_to_normalized_lab,
)
from bench.dataset import Dataset, ImageRef
from bench.errors import BenchError, Unavailable
from bench.hookspecs import hookimpl
from bench.method import Batch, Method, MethodContext, MethodOptions, linear_decay
from bench.metric import Metric, MetricContext
from bench.options import Options

__all__ = [
    "AB_SCALE",
    "L_SCALE",
    "Batch",
    "BenchError",
    "Dataset",
    "ImageRef",
    "Method",
    "MethodContext",
    "MethodOptions",
    "Metric",
    "MetricContext",
    "Options",
    "Unavailable",
    "hookimpl",
    "lab_to_rgb",
    "linear_decay",
    "normalized_lab_to_rgb",
    "rgb_to_lab",
    "rgb_to_normalized_lab",
]
