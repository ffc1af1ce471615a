"""``bench new-method NAME``: a plugin package that installs and runs as it is.

It writes ``colorbench-<name>/`` with a pyproject (the ``colorbench`` entry point), the method
module (every part of the plugin contract, commented), a test and a README, from the templates
in ``bench/plugin_template``. Nothing is overwritten.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import bench
from bench.errors import BenchError

TEMPLATES = Path(__file__).parent / "plugin_template"
NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def new_method(name: str, directory: Path, description: str | None = None) -> Path:
    if not NAME.match(name):
        raise BenchError(f"method name {name!r}: use lowercase letters, digits and single hyphens (e.g. my-colorizer)")
    from bench import registry

    if name in registry.methods():
        raise BenchError(f"method name {name!r} is taken by {registry.methods().get(name).plugin}: choose another")
    module = "colorbench_" + name.replace("-", "_")
    values = {
        "name": name,
        "module": module,
        "dist_name": f"colorbench-{name}",
        "class_name": "".join(part.capitalize() for part in name.split("-")) + "Method",
        "description": description or f"{name}: a small CNN regressing ab from L with L1",
        "colorbench_version": bench.__version__,
    }
    root = Path(directory) / values["dist_name"]
    if root.exists():
        raise BenchError(f"{root} already exists: nothing written (choose another name or folder)")
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"{module}/__init__.py": "module.py.tmpl",
        f"tests/test_{module}.py": "test_module.py.tmpl",
    }
    for target, template in files.items():
        text = string.Template((TEMPLATES / template).read_text()).substitute(values)
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
