"""Benchmarks' shared setup: one summary table at the end (the side-by-side benchmarks share
``tests.benchmarks.side_by_side`` and ``tests.benchmarks.reference_nets``)."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter):
    side_by_side = sys.modules.get("tests.benchmarks.side_by_side")
    if side_by_side is None or not side_by_side.RESULTS:
        return
    terminalreporter.section("colorbench side by side")
    for line in side_by_side.summary_lines():
        terminalreporter.write_line(line)
