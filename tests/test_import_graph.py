"""The package's import graph, read from the source: no circles (imports inside functions and under
TYPE_CHECKING count too, so a lazy import cannot hide one), built-in plugins use only ``bench.api``, and the
launchers never import the runner."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checkout's top-level folders and the names they install as (pyproject's package-dir).
PACKAGES = {"bench": "bench", "methods": "bench.methods", "datasets": "bench.datasets", "reports": "bench.reports"}


def module_files() -> dict[str, Path]:
    modules = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    return modules


MODULES = module_files()


def imported(module: str, path: Path) -> set[str]:
    """The project modules ``module`` imports anywhere in its file: ``from pkg import sub`` counts as the
    submodule, ``from pkg import name`` as the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # bench.x.y.name -> bench.x.y
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


GRAPH = {module: imported(module, path) for module, path in MODULES.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read():
    assert len(MODULES) > 80
    assert "bench.evaluation.metric_pass" in GRAPH["bench.evaluation.test_split"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert circles(GRAPH) == []


def test_built_in_plugins_import_only_the_plugin_api():
    """What a third party gets is what the built-ins use: ``bench.api``, and their own package's modules."""
    for module, targets in GRAPH.items():
        package = ".".join(module.split(".")[:2])
        if package in ("bench.methods", "bench.datasets"):
            outside = {t for t in targets if not t.startswith(package) and t != "bench.api"}
            assert not outside, f"{module} imports {sorted(outside)}; export what it needs from bench.api"


def test_launchers_import_the_engine_never_the_runner():
    for module, targets in GRAPH.items():
        if module.startswith("bench.launch"):
            assert "bench.runner" not in targets, module
