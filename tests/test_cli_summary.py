"""What `bench run` says (issue 20, item 2): a closing table within 100 columns, full method names, what happened
this time, the ranking metric with its interval, missing weights said once with `bench weights`, the plan first."""

from __future__ import annotations

import json

from rich.console import Console

from bench.cli.summary import results_table

LONG = "a-plugin-method-with-a-rather-long-descriptive-name"
UNAVAILABLE = {"status": "unavailable", "reason": "LPIPS AlexNet trunk unavailable (put alexnet.pth at /x; from y)"}


def result(method: str, seed: int, psnr: float, *, action: str = "started", status: str = "ok") -> dict:
    return {"method": method, "seed": seed, "status": status, "action": action, "error": None,
            "budget": {"label": "2steps"}, "metrics": {"psnr": psnr, "ssim": 0.5, "lpips": None},
            "per_image": {"psnr": [psnr, psnr + 1, psnr - 1]},
            "metric_details": {"lpips": UNAVAILABLE, "fd-alex": UNAVAILABLE}}


def rendered(results: list[dict]) -> tuple[list[str], list[str]]:
    table, lines = results_table(results)
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text().splitlines(), lines


def test_the_table_fits_100_columns_and_never_cuts_a_name():
    results = [result(LONG, 0, 20.0), result(LONG, 1, 21.0, action="skipped (already done)"),
               result("pix2pix-resnet18-scratch", 0, 19.0, action="resumed at step 5")]
    rows, _ = rendered(results)
    assert max(len(row) for row in rows) <= 100 and not any("…" in row for row in rows)
    header = next(row for row in rows if row.lstrip().startswith("method"))
    cut = header.index(" ok") - 2  # the method column: from the left edge to the "ok" column
    method_column = "".join(row[:cut].strip() for row in rows[rows.index(header) + 2:])
    assert LONG in method_column and "pix2pix-resnet18-scratch" in method_column
    text = "\n".join(rows)
    assert "1 started, 1 skipped" in text and "resumed" in text and "2/2" in text
    assert "psnr ↑ [95 %]" in text and "20.5 [" in text  # two seeds: the mean with its interval
    assert "19 (1 seed)" in text  # one seed: no interval


def test_missing_weights_are_said_once_with_the_fix_and_the_ranking_fallback_in_words():
    _, lines = rendered([result("baseline", 0, 20.0), result("pix2pix", 0, 21.0)])
    assert lines[0] == "lpips has no values here, so psnr is shown first (and ranks the report's boards)"
    (missing,) = [line for line in lines if line.startswith("not scored")]
    assert missing.startswith("not scored: lpips, fd-alex: LPIPS AlexNet trunk unavailable;")
    assert "`bench weights`" in missing and "/x" not in missing


def test_the_plan_is_said_first_and_an_unavailable_method_is_skipped_not_started(run_cli, tmp_path):
    args = ("run", "--methods", "baseline,pix2pix-resnet18", "--dataset", "sample", "--size", "32", "--budget",
            "2steps", "--seeds", "1", "--device", "cpu", "--metrics", "psnr", "-o", "width=4", "--out", tmp_path,
            "--json")
    code, stdout, err = run_cli(*args)
    assert code == 0 and "plan: 2 runs (2 methods x 1 seed) at 2steps: 2 to train" in err
    actions = {r["method"]: r["action"] for r in json.loads(stdout)}
    assert actions == {"baseline": "started", "pix2pix-resnet18": "skipped (unavailable here)"}
    assert "runs: 1 started, 1 skipped (unavailable here)" in err
    code, _, err = run_cli(*args)
    assert "plan: 2 runs (2 methods x 1 seed) at 2steps, 1 already done: 1 to train" in err
