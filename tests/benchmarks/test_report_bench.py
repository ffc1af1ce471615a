"""Speed and size of `bench report` (render_site), and of the comparison behind its verdicts.

Run: python -m pytest tests/benchmarks/test_report_bench.py --benchmark-only
By default it renders the synthetic example runs (tests.report_example) and a flowers-sized board
(8 methods x 3 seeds x 340 test images, with both reference rows); set COLORBENCH_REPORT_RUNS=<runs
folder> to measure a real one instead. The site's size (bytes, files) is in extra_info
(`--benchmark-json` keeps it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.reports import render_site
from tests.report_example import example_runs, write_reference, write_result
from bench.stats import compare_means

METHODS = ("baseline", "unet-l2", "pix2pix", "pix2pix-resnet18", "pix2pix-resnet18-scratch", "cyclegan-paired",
           "cyclegan-unpaired", "plugin-method")


def flowers_sized_runs(runs: Path, images: int = 340, seeds: int = 3) -> Path:
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0.0, 0.05, images)
    for k, method in enumerate(METHODS):
        for seed in range(seeds):
            lpips = 0.2 + 0.004 * k + difficulty + rng.normal(0.0, 0.01, images)
            write_result(runs, method, seed, samples=[], metrics={
                "lpips": list(lpips), "psnr": list(22 - 10 * lpips), "ssim": list(0.9 - lpips / 2),
                "colourfulness": list(20 + 2 * k + rng.normal(0.0, 3.0, images))})
    write_reference(runs, "gray", metrics={"lpips": list(0.3 + difficulty), "psnr": list(20 + difficulty)})
    write_reference(runs, "truth", metrics={"lpips": [0.0] * images, "psnr": "inf"})
    return runs


@pytest.mark.parametrize("kind", ["example", "flowers-sized"])
def test_render_site(benchmark, tmp_path, kind):
    given = os.environ.get("COLORBENCH_REPORT_RUNS")
    if given and kind != "example":
        pytest.skip("COLORBENCH_REPORT_RUNS measures that folder once")
    runs = Path(given) if given else (example_runs if kind == "example" else flowers_sized_runs)(tmp_path / "runs")
    site = tmp_path / "site"
    benchmark(render_site, [runs], site, verdicts=["psnr", "colourfulness"])  # each round replaces the previous
    files = [p for p in site.rglob("*") if p.is_file()]
    benchmark.extra_info.update(runs=str(runs), site_files=len(files), site_bytes=sum(p.stat().st_size for p in files))


@pytest.mark.parametrize("images", [340, 6149])  # the flowers and flowers102 test splits
def test_compare_means(benchmark, images):
    rng = np.random.default_rng(0)
    a, b = rng.random((3, images)), rng.random((3, images))
    result = benchmark(compare_means, a, b, tests=28)
    assert result["n_images"] == images
