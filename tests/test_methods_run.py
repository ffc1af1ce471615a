"""The issue's end-to-end check: every built-in method through `bench run` on the offline sample."""

import json

import pytest

from bench import registry
from bench.store.results import find_runs

ADVERSARIAL = ("pix2pix", "pix2pix-resnet18", "pix2pix-resnet18-scratch", "cyclegan-paired", "cyclegan-unpaired")


@pytest.mark.slow
def test_run_all_methods_smoke(run_cli, tmp_path):
    # --size 32 and two cheap metrics keep it quick; the budget is the smoke preset itself.
    code, out, _ = run_cli("run", "--methods", "all", "--dataset", "sample", "--budget", "smoke", "--size", "32",
                           "--device", "cpu", "--metrics", "psnr,ssim", "--out", tmp_path, "--json")
    assert code == 0
    printed = {r["method"]: r for r in json.loads(out)}
    assert set(ADVERSARIAL) <= set(printed) == set(registry.list_methods())
    for method in printed:
        result = json.loads((find_runs(tmp_path, "sample", method, 0)[0] / "result.json").read_text())
        if method == "pix2pix-resnet18":
            assert result["status"] == "skipped"
            assert "ImageNet ResNet18 weights unavailable (put resnet18-f37072fd.pth at" in result["error"]
            assert result["budget"]["steps"] == 0  # never trained from random init under this name
            continue
        assert result["status"] == "ok", (method, result["error"])
        assert result["budget"]["steps"] == 30 and result["metrics"]["psnr"] > 5
        if method in ADVERSARIAL:
            assert (find_runs(tmp_path, "sample", method, 0)[0] / "checkpoint.pt").is_file()
            losses = result["history"]["losses"]
            assert "G_L1" in losses or {"cycle_gray", "cycle_color"} <= set(losses)
