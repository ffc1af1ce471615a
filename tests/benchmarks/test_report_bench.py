"""Speed and size of `bench report` (render_site).

Run: python -m pytest tests/benchmarks/test_report_bench.py --benchmark-only
By default it renders the synthetic example runs (bench.reports.example); set
COLORBENCH_REPORT_RUNS=<runs folder> to measure a real one (e.g. all methods on flowers).
The site's size (bytes, files) is in extra_info (`--benchmark-json` keeps it).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.reports import render_site
from bench.reports.example import example_runs


def test_render_site(benchmark, tmp_path):
    given = os.environ.get("COLORBENCH_REPORT_RUNS")
    runs = Path(given) if given else example_runs(tmp_path / "runs")
    site = tmp_path / "site"
    benchmark(render_site, [runs], site)  # each round replaces the previous round's files
    files = [p for p in site.rglob("*") if p.is_file()]
    benchmark.extra_info.update(runs=str(runs), site_files=len(files), site_bytes=sum(p.stat().st_size for p in files))
