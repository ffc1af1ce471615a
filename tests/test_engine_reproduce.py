"""`bench reproduce`: a published CPU run is made again bit for bit; an edited result is caught."""

from __future__ import annotations

import json

from bench.reproduce import DIFFERS, IDENTICAL, WITHIN_CI, verdict


def test_verdicts():
    assert verdict(1.5, 1.5, [1.0, 2.0]) == IDENTICAL
    assert verdict(1.5, 1.6, [1.0, 2.0]) == WITHIN_CI
    assert verdict(1.5, 2.6, [1.0, 2.0]) == DIFFERS and verdict(1.5, 1.6, None) == DIFFERS
    assert verdict(float("inf"), float("inf"), None) == IDENTICAL


def test_a_cpu_step_run_reproduces_identical_and_an_edited_one_differs(run_cli, tmp_path):
    runs = tmp_path / "runs"
    args = ("--dataset", "sample", "--size", "32", "--budget", "2steps", "--device", "cpu", "--metrics", "psnr,ssim",
            "--seeds", "1", "-o", "width=8")
    code, _, _ = run_cli("run", "--methods", "baseline", *args, "--out", runs)
    assert code == 0
    code, out, _ = run_cli("reproduce", runs, "--out", tmp_path / "again", "--device", "cpu", "--json")
    assert code == 0
    (run,) = json.loads(out)
    assert run["ok"] and run["method"] == "baseline" and run["environment_differences"] == []
    assert {m["metric"]: m["verdict"] for m in run["metrics"]} == {"psnr": IDENTICAL, "ssim": IDENTICAL}

    (published,) = runs.rglob("baseline/*/seed0/result.json")
    result = json.loads(published.read_text())
    result["metrics"]["psnr"] += 5.0  # a number edited by hand: no longer the mean of its per-image values
    result["metric_details"]["ssim"]["value"] = result["metrics"]["ssim"] = 0.99  # and one forged with its interval
    result["metric_details"]["ssim"]["ci95"] = [0.98, 1.0]
    result["per_image"].pop("ssim")
    published.write_text(json.dumps(result))
    code, out, _ = run_cli("reproduce", published, "--out", tmp_path / "again2", "--device", "cpu", "--json")
    (run,) = json.loads(out)
    assert code == 1 and not run["ok"]
    assert {m["metric"]: m["verdict"] for m in run["metrics"]} == {"psnr": DIFFERS, "ssim": DIFFERS}
    assert "not the mean of its own per-image values" in run["metrics"][0]["note"]
    code, _, err = run_cli("reproduce", runs, "--out", runs, "--device", "cpu")
    assert code == 2 and "published results live there" in err
    code, _, err = run_cli("reproduce", tmp_path / "nothing", "--device", "cpu")
    assert code == 2 and "does not exist" in err
