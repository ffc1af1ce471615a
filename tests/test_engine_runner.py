"""The harness end to end: bench run -> result.json + SQLite index; failures recorded; determinism."""

import json
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

from bench.api import Method, Unavailable
from tests.helpers import find_runs


class Exploding(Method):
    name = "exploding"

    def train_step(self, batch):
        raise RuntimeError("boom in training")


class NeedsWeights(Method):
    name = "needs-weights"

    def __init__(self, options, context):
        super().__init__(options, context)
        raise Unavailable("Example weights unavailable (put x.pth at /somewhere)")


def folder(out, method, seed=0, dataset="sample"):
    """The one run folder of ``method`` x ``seed`` (its config hash is not spelled out here)."""
    found = find_runs(out, dataset, method, seed)
    assert len(found) == 1, found
    return found[0]


def read(out, method, seed=0, dataset="sample"):
    return json.loads((folder(out, method, seed, dataset) / "result.json").read_text())


TINY = ("--dataset", "sample", "--size", "32", "--budget", "3steps", "--device", "cpu", "--metrics", "psnr,ssim",
        "--seeds", "1")


def test_run_writes_complete_results_and_index(run_cli, tmp_path, extra_methods):
    extra_methods(Exploding, NeedsWeights)
    out = tmp_path / "runs"
    code, stdout, _ = run_cli("run", "--methods", "baseline,exploding,needs-weights", *TINY, "--out", out, "--json")
    assert code == 3  # a run failed: said by the exit status, the others kept
    printed = {r["method"]: r for r in json.loads(stdout)}
    assert [printed[m]["status"] for m in ("baseline", "exploding", "needs-weights")] == ["ok", "failed", "skipped"]

    ok = read(out, "baseline")
    budget = ok["budget"]  # every measure of what it got
    assert {k: budget[k] for k in ("kind", "value", "label", "used", "steps")} == {
        "kind": "steps", "value": 3, "label": "3steps", "used": 3, "steps": 3}
    assert budget["images"] == 48 and budget["epochs"] == 48 / ok["data"]["train_images"] and budget["seconds"] > 0
    assert budget["flops"] == 3 * ok["timings"]["flops_per_step"]
    assert set(ok["metrics"]) == {"psnr", "ssim"} and ok["metrics"]["psnr"] > 5
    assert ok["metric_details"]["psnr"]["ci95"][0] <= ok["metrics"]["psnr"] <= ok["metric_details"]["psnr"]["ci95"][1]
    assert len(ok["per_image"]["psnr"]) == ok["data"]["test_images"] == len(ok["per_image"]["names"])
    for key in ("train_s", "eval_s", "train_images_per_s", "eval_images_per_s"):
        assert ok["timings"][key] > 0
    assert ok["environment"]["torch"] == torch.__version__ and ok["environment"]["device"].startswith("CPU")
    packages = ok["environment"]["packages"]  # every runtime dependency's version
    assert {"torch", "torchvision", "timm", "lpips", "pytorch-fid", "pluggy", "numpy"} <= set(packages)
    assert all(isinstance(version, str) for version in packages.values())
    assert ok["config"]["seed"] == 0 and ok["config"]["budget_label"] == "3steps"
    assert ok["identity"]["budget"] == {"kind": "steps", "value": 3} and ok["identity"]["precision"] == "fp32"
    assert ok["config"]["method_options"]["batch_size"] == 16  # defaults recorded, not just overrides
    assert (folder(out, "baseline") / "checkpoint.pt").is_file()
    sample = ok["samples"][0]
    for kind in ("gray", "pred", "truth"):
        image = Image.open(folder(out, "baseline") / sample[kind])
        assert image.size == (32, 32)
    assert len(ok["history"]["step"]) == 3 and "L2" in ok["history"]["losses"]

    failed = read(out, "exploding")
    assert failed["error"] == "RuntimeError: boom in training" and "Traceback" in failed["traceback"]
    assert read(out, "needs-weights")["error"] == "Example weights unavailable (put x.pth at /somewhere)"

    db = sqlite3.connect(out / "runs.sqlite")
    rows = dict(db.execute("SELECT method, status FROM runs WHERE kind = 'method'").fetchall())
    assert rows == {"baseline": "ok", "exploding": "failed", "needs-weights": "skipped"}
    assert db.execute("SELECT COUNT(*) FROM metrics WHERE path LIKE '%exploding%'").fetchone()[0] == 0
    psnr = db.execute("SELECT value FROM metrics WHERE path LIKE '%baseline%' AND name='psnr'").fetchone()[0]
    assert psnr == pytest.approx(ok["metrics"]["psnr"])


def test_same_seed_same_numbers_on_cpu(run_cli, tmp_path):
    metrics = []
    for name, seeds in (("a", "0,1"), ("b", "0,1")):  # a small network; no sample images (not compared)
        code, _, _ = run_cli("run", "--methods", "baseline", *TINY, "--seeds", seeds, "-o", "width=8",
                             "-o", "batch_size=4", "--samples", "0", "--out", tmp_path / name)
        assert code == 0
        metrics.append([read(tmp_path / name, "baseline", seed)["metrics"] for seed in (0, 1)])
    assert metrics[0] == metrics[1]  # bit-identical across runs
    assert metrics[0][0] != metrics[0][1]  # and the seed matters


def test_all_methods_failing_exits_nonzero(run_cli, tmp_path, extra_methods):
    extra_methods(Exploding)
    code, _, _ = run_cli("run", "--methods", "exploding", *TINY, "--out", tmp_path)
    assert code == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (("--methods", "nope"), "unknown method 'nope'"),
        (("--dataset", "imagenet"), "unknown dataset 'imagenet'"),
        (("--budget", "soon"), "bad budget 'soon'"),
        (("--seeds", "0,0"), "distinct"),
        (("--metrics", "psnr,fidd"), "unknown metric 'fidd'"),
        (("-o", "baseline.depthh=2"), "unknown option depthh"),
        (("-o", "frobnicate=2"), "no method in this run has an option 'frobnicate'"),
        (("-o", "pix2pixx.lr=1"), "not part of this run"),
        (("--size", "8"), "at least 16"),
        (("--device", "tpu"), "bad device"),
        (("--dataset-option", "oops"), "expected KEY=VALUE"),
    ],
)
def test_bad_input_gives_one_line_error_and_writes_nothing(run_cli, tmp_path, args, message):
    base = {"--methods": "baseline", "--dataset": "sample", "--budget": "1steps", "--size": "32"}
    argv = ["run", "--out", tmp_path / "out", "--device", "cpu"]
    for flag, value in base.items():
        if flag not in args:
            argv += [flag, value]
    code, _, err = run_cli(*argv, *args)
    assert code == 2
    assert message in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "out" / "sample").exists()


def test_checkpoint_colorizes_own_photos_at_their_size(run_cli, tmp_path):
    out = tmp_path / "runs"
    assert run_cli("run", "--methods", "baseline", *TINY, "--out", out)[0] == 0
    checkpoint = folder(out, "baseline") / "checkpoint.pt"
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 50, 3), dtype=np.uint8)).save(photos / "colour.png")
    Image.fromarray(rng.integers(0, 255, (80, 61), dtype=np.uint8)).save(photos / "old.jpg")  # grayscale
    code, stdout, err = run_cli("colorize", "--checkpoint", checkpoint, photos / "colour.png", photos / "old.jpg",
                                "--out", tmp_path / "colorized", "--device", "cpu", "--json")
    assert code == 0, err
    outputs = json.loads(stdout)["outputs"]
    assert Image.open(outputs[0]).size == (50, 37) and Image.open(outputs[1]).size == (61, 80)
    # The luminance of the output is the photo's own (only ab is predicted).
    from skimage.color import rgb2lab

    gray_in = np.asarray(Image.open(photos / "old.jpg").convert("RGB")) / 255
    colour_out = np.asarray(Image.open(outputs[1])) / 255
    assert np.abs(rgb2lab(gray_in)[..., 0] - rgb2lab(colour_out)[..., 0]).mean() < 1.5

    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_cli("colorize", "--checkpoint", tmp_path / "bad.pt", photos / "colour.png", "--out", tmp_path / "x")
    assert code == 2 and "is a text file" in err and "expected a colorbench checkpoint" in err
    torch.save({"something": 1}, tmp_path / "other.pt")
    code, _, err = run_cli("colorize", "--checkpoint", tmp_path / "other.pt", photos / "colour.png", "--out", tmp_path / "x")
    assert code == 2 and "not a colorbench checkpoint" in err
    (photos / "notes.txt").write_text("hello")
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, photos / "notes.txt", "--out", tmp_path / "x")
    assert code == 1 and "notes.txt: not a readable image" in err  # failed inputs: exit 1
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_checkpoint_restores_the_trained_network(run_cli, tmp_path):
    from bench.engine.checkpoint import load_checkpoint

    out = tmp_path / "runs"
    assert run_cli("run", "--methods", "baseline", *TINY, "--out", out)[0] == 0
    method, meta = load_checkpoint(folder(out, "baseline") / "checkpoint.pt")
    assert meta["method"] == "baseline" and meta["size"] == 32 and meta["steps"] == 3
    ab = method.colorize(torch.zeros(1, 1, 32, 32))
    assert ab.shape == (1, 2, 32, 32)


@pytest.mark.slow
def test_short_real_data_run_on_shared_flowers(run_cli, tmp_path, shared_flowers_root):
    out = tmp_path / "runs"
    code, stdout, err = run_cli("run", "--methods", "baseline", "--dataset", "flowers", "--data-root",
                                shared_flowers_root, "--size", "32", "--budget", "2steps", "--device", "cpu",
                                "--metrics", "psnr,ssim", "--seeds", "1", "--out", out, "--json")
    assert code == 0, err
    result = read(out, "baseline", dataset="flowers")
    assert result["status"] == "ok"
    assert (result["data"]["train_images"], result["data"]["test_images"]) == (1020, 324)  # 16 duplicates dropped
    assert result["per_image"]["names"][:2] == ["image_0061.jpg", "image_0062.jpg"]
    assert 5 < result["metrics"]["psnr"] < 60 and 0 < result["metrics"]["ssim"] <= 1
