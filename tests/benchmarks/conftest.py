"""Benchmarks' shared setup: their helper modules import by name, and one summary table at the end."""

from __future__ import annotations

import sys
from pathlib import Path

# The repo runs pytest with --import-mode=importlib, which puts no test folder on sys.path; the
# side-by-side benchmarks share `side_by_side` and `reference_nets` from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_terminal_summary(terminalreporter):
    side_by_side = sys.modules.get("side_by_side")
    if side_by_side is None or not side_by_side.RESULTS:
        return
    terminalreporter.section("colorbench side by side")
    for line in side_by_side.summary_lines():
        terminalreporter.write_line(line)
