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
from bench.data import cache_dir, decode
from bench.dataset import Dataset, ImageRef
from bench.errors import BenchError, Unavailable
from bench.hookspecs import hookimpl
from bench.method import Batch, Method, MethodContext, MethodOptions, linear_decay, training_step
from bench.metric import Metric, MetricContext
from bench.options import Options, fraction, positive
from bench.progress import log
from bench.store.atomic import atomic_write_text
from bench.store.identity import safe_name

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
    "atomic_write_text",
    "cache_dir",
    "decode",
    "fraction",
    "hookimpl",
    "lab_to_rgb",
    "linear_decay",
    "log",
    "normalized_lab_to_rgb",
    "positive",
    "rgb_to_lab",
    "rgb_to_normalized_lab",
    "safe_name",
    "training_step",
]
