"""Budget curves: boards that differ only in budget become one curve, and decided crossovers are stated."""

from __future__ import annotations

import json

import numpy as np

from bench.reports import render_site
from tests.report_example import TEST_IMAGES, write_reference, write_result

BUDGETS = [("time", 120, "2m"), ("time", 300, "5m"), ("time", 900, "15m")]


def test_a_curve_per_board_family_with_its_decided_crossovers(tmp_path):
    """A plain CNN learns fast and plateaus, a GAN starts slow: lpips per budget (lower is better)."""
    runs = tmp_path / "runs"
    difficulty = np.linspace(0.0, 0.1, TEST_IMAGES)
    means = {"cnn": (0.20, 0.19, 0.19), "gan": (0.30, 0.19, 0.12)}
    for method, by_budget in means.items():
        for budget, mean in zip(BUDGETS, by_budget):
            for seed, shift in enumerate((0.002, -0.002, 0.0)):
                write_result(runs, method, seed, budget=budget, metrics={"lpips": list(mean + difficulty + shift),
                                                                          "psnr": 20.0 + seed})
    write_reference(runs, "gray", metrics={"lpips": list(0.5 + difficulty)})
    site = render_site([runs], tmp_path / "site")
    data = json.loads((site / "leaderboard.json").read_text())
    assert len(data["boards"]) == 3  # one board per budget ...
    curve, psnr = data["curves"]  # ... and one curve across them per metric, the ranking metric's first
    assert psnr["metric"] == "psnr" and not psnr["ranking"] and not psnr["crossovers_decidable"]
    assert curve["metric"] == "lpips" and curve["budgets"] == ["2m (120 s)", "5m (300 s)", "15m (900 s)"]
    assert [round(p["mean"], 4) for p in curve["series"]["gan"]] == [0.35, 0.24, 0.17]
    assert [p["budget"] for p in curve["series"]["cnn"]] == [120, 300, 900]
    (crossover,) = curve["crossovers"]  # gan: behind at 2m, tied at 5m, ahead at 15m
    assert crossover.startswith("gan overtakes cnn between 2m (120 s) and 15m (900 s) on lpips, −0.07 [")
    assert crossover.endswith("] at 15m (900 s)")
    index = (site / "index.html").read_text()
    assert "Budget curves" in index and "budget (log scale)" in index and crossover in index
    assert "psnr ↑ against the budget</summary>" in index and "--verdicts psnr</code> adds them" in index


def test_no_curve_from_one_budget_and_no_crossover_without_verdicts(tmp_path):
    runs = tmp_path / "runs"
    for method, value in (("cnn", 0.2), ("gan", 0.3)):
        for budget in BUDGETS[:2]:
            write_result(runs, method, 0, budget=budget, metrics={"lpips": value})  # one seed: needs seeds
    write_result(runs, "cnn", 0, dataset="single", metrics={"lpips": 0.2})
    data = json.loads((render_site([runs], tmp_path / "site") / "leaderboard.json").read_text())
    (curve,) = data["curves"]  # the "single" dataset has one budget: no curve
    assert curve["crossovers"] == []
