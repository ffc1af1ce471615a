"""The issue's end-to-end check: every built-in method through `bench run` on the offline sample."""

import json

import pytest

from bench import registry
from tests.helpers import find_runs

ADVERSARIAL = ("pix2pix", "pix2pix-resnet18", "pix2pix-resnet18-scratch", "cyclegan-paired", "cyclegan-unpaired")
# Every method's smallest networks: widths of 4-8 channels (-o KEY=VALUE reaches each method that has KEY)
# and batches of 2 for the two whose default is 16 (ResNet18 has no width option).
TINY_NETS = ("-o", "width=8", "-o", "ngf=4", "-o", "ndf=4", "-o", "baseline.batch_size=2",
             "-o", "pix2pix-resnet18-scratch.batch_size=2")


@pytest.mark.slow
def test_run_all_methods_smoke(run_cli, tmp_path):
    # --size 32, two cheap metrics and the smallest networks (TINY_NETS) keep it quick; the budget is the
    # smoke preset itself.
    code, out, _ = run_cli("run", "--methods", "all", "--dataset", "sample", "--budget", "smoke", "--size", "32",
                           "--device", "cpu", "--metrics", "psnr,ssim", "--seeds", "1", *TINY_NETS, "--out", tmp_path,
                           "--json")
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
