"""Evaluation side by side: colorbench's scoring against the reference tools on the same image folders.

Run: python -m pytest tests/benchmarks/test_eval_reference_bench.py --benchmark-only

COLORBENCH_BENCH_EVAL_IMAGES pairs of 256x256 PNGs (default 10,000 on CUDA, 32 on the CPU) are
written to ``pred/`` and ``target/`` (smooth colour fields plus noise, so the PNGs compress and
decode like photos), then timed once each, on CUDA when present:

- reference (i): the pytorch-fid command line, ``python -m pytorch_fid pred target --device cuda:0
  --batch-size 50`` in its own process (start-up, imports and CUDA initialisation are part of
  running it; they are measured alone too, as ``cli_startup_s``). It needs the FID Inception
  weights: without them it would download, so it is skipped, saying where they were looked for;
- reference (ii): the lpips package's distance loop as its ``lpips_2dirs.py`` example runs it: per
  file pair ``lpips.im2tensor(lpips.load_image(path))`` and ``loss_fn.forward(img0, img1)``, each
  distance read back (the script writes it out); AlexNet trunk from the local weights as
  ``bench.metrics.perceptual`` loads it (``load_image`` needs OpenCV; without it the same RGB array
  comes from PIL, and the row says so);
- colorbench: ``bench.evaluation.folders.score_folders`` (the ``bench score`` path: decoding, every available
  metric on the device, batches of COLORBENCH_BENCH_EVAL_BATCH), model loading included; and the
  metrics alone (``build_metrics`` + ``evaluate`` on uint8 batches already on the device).

The ratio is the reference's seconds (the parts that ran) over colorbench's. Both sides' LPIPS and
FID values are checked to agree, so the two measured the same thing. The weights are looked up in
COLORBENCH_BENCH_WEIGHTS, then ``../shared/weights``, then ``~/.cache/torch/hub/checkpoints`` (the
test conftest hides $TORCH_HOME).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench import registry
from bench.errors import BenchError
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.metric import MetricContext
from bench.metrics.distribution import load_fid_inception
from bench.metrics.perceptual import load_lpips, trunk_state_dict
from bench.evaluation.folders import image_files, read_rgb, score_folders
from bench.weights import KNOWN_WEIGHTS, WeightStore
from tests.benchmarks.side_by_side import DEVICES, RESULTS, Settings, device_name, find_result, free_memory, synthetic_images

EVAL_SIZE = 256
WRITE_CHUNK = 250
LPIPS_FILES = ("alexnet-owt-7be5be79.pth", "alexnet-features-lpips.pth")
FID_FILE = KNOWN_WEIGHTS["fid-inception"].filename
HAS_CV2 = importlib.util.find_spec("cv2") is not None
ROOT = Path(__file__).resolve().parents[2]


# -- the image folders and the weights -------------------------------------------------------------
def write_pairs(root: Path, n: int, size: int) -> tuple[Path, Path]:
    """``n`` PNG pairs: targets, and predictions with shifted colours (as a colorizer's would be)."""
    pred_dir, target_dir = root / "pred", root / "target"
    pred_dir.mkdir(parents=True)
    target_dir.mkdir(parents=True)

    def save(array: np.ndarray, path: Path) -> None:
        Image.fromarray(array).save(path)  # PIL's default PNG compression, as users' files have

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for start in range(0, n, WRITE_CHUNK):
            count = min(WRITE_CHUNK, n - start)
            targets = synthetic_images(count, size, seed=start)
            tint = synthetic_images(count, size, seed=n + start, noise=0.0)
            preds = (0.7 * targets.float() + 0.3 * tint.float()).round().to(torch.uint8)
            jobs = [(images[k].permute(1, 2, 0).numpy(), folder / f"{start + k:06d}.png")
                    for images, folder in ((targets, target_dir), (preds, pred_dir)) for k in range(count)]
            list(pool.map(lambda job: save(*job), jobs))
    return pred_dir, target_dir


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    """(pred, target) folders per number of images, written once per module, removed after it
    (10,000 pairs take about 3 GB)."""
    made: dict[int, tuple[Path, Path]] = {}

    def get(n: int) -> tuple[Path, Path]:
        if n not in made:
            made[n] = write_pairs(tmp_path_factory.mktemp(f"eval-{n}"), n, EVAL_SIZE)
        return made[n]

    yield get
    for pred_dir, _ in made.values():
        shutil.rmtree(pred_dir.parent, ignore_errors=True)


def weight_search_dirs() -> list[Path]:
    dirs = []
    given = os.environ.get("COLORBENCH_BENCH_WEIGHTS", "").strip()
    if given:
        if not Path(given).expanduser().is_dir():
            raise BenchError(f"COLORBENCH_BENCH_WEIGHTS={given!r} is not a folder")
        dirs.append(Path(given).expanduser())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return dirs + [ROOT.parent / "shared" / "weights", cache / "torch" / "hub" / "checkpoints"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A weights folder linking what was found; its ``torch/`` is the pytorch-fid CLI's TORCH_HOME."""
    folder = tmp_path_factory.mktemp("bench-weights")
    hub = folder / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for candidates in (LPIPS_FILES, (FID_FILE,)):
        found = next((d / name for name in candidates for d in weight_search_dirs() if (d / name).is_file()), None)
        if found is not None:
            (folder / found.name).symlink_to(found.resolve())
            (hub / found.name).symlink_to(found.resolve())
    return folder


def lpips_trunk(weights: Path) -> Path | None:
    return next((weights / name for name in LPIPS_FILES if (weights / name).exists()), None)


def missing(what: str, names) -> str:
    where = ", ".join(str(d) for d in weight_search_dirs())
    return f"{what} skipped: {' or '.join(names)} not found in {where} (set COLORBENCH_BENCH_WEIGHTS to its folder)"


@pytest.fixture
def default_cudnn():
    """Both CLIs run with cuDNN's defaults (`bench score` sets no benchmark mode); earlier benchmarks may not."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    yield
    torch.backends.cudnn.benchmark = saved


def record(benchmark, settings: Settings, side: str, kind: str, what: str, images: int, **extra) -> dict:
    seconds = benchmark.stats.stats.median
    row = {"section": "eval", "device": settings.device.type, "device_name": device_name(settings.device),
           "side": side, "what_kind": kind, "what": what, "images": images, "seconds": seconds,
           "images_per_s": images / seconds, **extra}
    if side == "colorbench":
        # A reference part counts only where this row computed its metric too (weights refused by
        # colorbench's hash check leave FID out here, so the CLI would be an unfair handicap).
        parts = [find_result(section="eval", device=row["device"], what_kind=kind, images=images)
                 for kind, metric in (("pytorch_fid_cli", "fid"), ("lpips_loop", "lpips"))
                 if metric in extra["metrics"]]
        ran = [p for p in parts if p]
        row["reference_parts"] = " + ".join(p["what"] for p in ran) or None
        row["ratio_vs_reference"] = sum(p["seconds"] for p in ran) / seconds if ran else None
    RESULTS.append(row)
    benchmark.extra_info.update(row)
    return row


# -- the reference -------------------------------------------------------------------------------
def load_image(path: str) -> np.ndarray:
    """lpips.load_image (OpenCV) where OpenCV is installed, else the same RGB uint8 array via PIL."""
    import lpips

    return lpips.load_image(path) if HAS_CV2 else np.asarray(Image.open(path).convert("RGB"))


def lpips_2dirs(dir0: Path, dir1: Path, trunk: Path, device: torch.device) -> list[float]:
    """lpips' ``lpips_2dirs.py``: one pair at a time, model built (and its trunk loaded) first."""
    import lpips

    loss_fn = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    loss_fn.net.load_state_dict(trunk_state_dict(torch.load(trunk, map_location="cpu", weights_only=True),
                                                 loss_fn.net))
    loss_fn.to(device)
    distances = []
    for file in os.listdir(dir0):
        if os.path.exists(os.path.join(dir1, file)):
            img0 = lpips.im2tensor(load_image(os.path.join(dir0, file))).to(device)
            img1 = lpips.im2tensor(load_image(os.path.join(dir1, file))).to(device)
            dist01 = loss_fn.forward(img0, img1)
            distances.append(dist01.item())  # the script writes '%s: %.6f' per pair
    return distances


@pytest.mark.parametrize("device", DEVICES)
def test_reference_lpips_loop(benchmark, device, image_folders, weights, default_cudnn):
    settings = Settings.for_device(device)
    trunk = lpips_trunk(weights)
    if trunk is None:
        pytest.skip(missing("lpips loop", LPIPS_FILES))
    pred_dir, target_dir = image_folders(settings.eval_images)
    distances = benchmark.pedantic(lpips_2dirs, args=(pred_dir, target_dir, trunk, settings.device),
                                   rounds=1, iterations=1)
    assert len(distances) == settings.eval_images
    record(benchmark, settings, "reference", "lpips_loop", "lpips loop (lpips_2dirs.py)", len(distances),
           lpips_mean=float(np.mean(distances)),
           decoder="cv2 (lpips.load_image)" if HAS_CV2 else "PIL (OpenCV missing; same RGB array)")


@pytest.mark.parametrize("device", DEVICES)
def test_reference_pytorch_fid_cli(benchmark, device, image_folders, weights, default_cudnn):
    settings = Settings.for_device(device)
    if not (weights / FID_FILE).exists():
        pytest.skip(missing("pytorch-fid CLI", (FID_FILE,)))
    pred_dir, target_dir = image_folders(settings.eval_images)
    free_memory(settings.device)  # the CLI's process gets the memory this one cached
    cli_device = "cuda:0" if settings.device.type == "cuda" else "cpu"
    env = os.environ | {"TORCH_HOME": str(weights / "torch")}
    command = [sys.executable, "-m", "pytorch_fid", str(pred_dir), str(target_dir), "--device", cli_device,
               "--batch-size", "50"]
    done = benchmark.pedantic(subprocess.run, args=(command,), kwargs={"env": env, "capture_output": True,
                                                                       "text": True}, rounds=1, iterations=1)
    if done.returncode:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    match = re.search(r"FID:\s*(\S+)", done.stdout)
    assert match, f"no FID in the CLI's output: {done.stdout[-500:]}"
    start = time.perf_counter()
    startup = f"import torch, pytorch_fid.fid_score; torch.zeros(1, device='{cli_device}')"
    subprocess.run([sys.executable, "-c", startup], env=env, check=True)
    record(benchmark, settings, "reference", "pytorch_fid_cli", "pytorch-fid CLI (batch 50)", settings.eval_images,
           fid=float(match.group(1)), cli_startup_s=time.perf_counter() - start)


# -- colorbench ----------------------------------------------------------------------------------
def check_agreement(values: dict, images: int, device: str) -> None:
    """Same images, same networks: colorbench's LPIPS and FID equal the reference tools'."""
    loop = find_result(section="eval", device=device, what_kind="lpips_loop", images=images)
    # Batched vs one pair at a time (and TF32 convolutions on a GPU) round differently: a small tolerance.
    if loop and values.get("lpips") is not None:
        assert abs(values["lpips"] - loop["lpips_mean"]) <= 1e-3 + 1e-2 * loop["lpips_mean"], (
            values["lpips"], loop["lpips_mean"])
    cli = find_result(section="eval", device=device, what_kind="pytorch_fid_cli", images=images)
    if cli and values.get("fid") is not None:
        assert abs(values["fid"] - cli["fid"]) <= 1e-2 * max(1.0, abs(cli["fid"])), (values["fid"], cli["fid"])


@pytest.mark.parametrize("device", DEVICES)
def test_colorbench_score_folders(benchmark, device, image_folders, weights, default_cudnn):
    settings = Settings.for_device(device)
    pred_dir, target_dir = image_folders(settings.eval_images)
    load_lpips.cache_clear()  # model loading counts, as in a fresh `bench score`
    load_fid_inception.cache_clear()
    result = benchmark.pedantic(score_folders, args=(pred_dir, target_dir),
                                kwargs={"device": settings.device, "weights_dir": weights,
                                        "batch_size": settings.eval_batch}, rounds=1, iterations=1)
    assert result["n_images"] == settings.eval_images
    computed = sorted(n for n, d in result["metric_details"].items() if d["status"] == "ok")
    assert {"psnr", "ssim", "colourfulness"} <= set(computed)
    row = record(benchmark, settings, "colorbench", "score_folders",
                 f"colorbench score_folders ({len(computed)} metrics, batch {settings.eval_batch})",
                 result["n_images"], metrics=computed, values=result["metrics"],
                 unavailable=sorted(set(result["metrics"]) - set(computed)))
    check_agreement(result["metrics"], row["images"], device)


@pytest.mark.parametrize("device", DEVICES)
def test_colorbench_metrics_on_decoded(benchmark, device, image_folders, weights, default_cudnn):
    settings = Settings.for_device(device)
    pred_dir, target_dir = image_folders(settings.eval_images)
    preds, targets = image_files(pred_dir), image_files(target_dir)
    names = sorted(preds)

    def decoded(files: dict[str, Path]) -> torch.Tensor:  # not timed: threads only shorten the wait
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            arrays = np.stack(list(pool.map(read_rgb, (files[name] for name in names))))
        return torch.from_numpy(arrays).permute(0, 3, 1, 2).to(settings.device)

    pred_u8, target_u8 = decoded(preds), decoded(targets)
    context = MetricContext(device=settings.device, weights=WeightStore(weights))

    def metrics_only():
        metrics, unavailable = build_metrics(registry.list_metrics(), context)
        batch = settings.eval_batch
        batches = ((pred_u8[i : i + batch], target_u8[i : i + batch]) for i in range(0, len(names), batch))
        return unavailable | evaluate(batches, metrics, len(names))

    results = benchmark.pedantic(metrics_only, rounds=1, iterations=1)
    computed = sorted(n for n, d in results.items() if d["status"] == "ok")
    assert {"psnr", "ssim", "colourfulness"} <= set(computed)
    record(benchmark, settings, "colorbench", "evaluate_decoded",
           f"colorbench metrics only (decoded, on {settings.device.type})", len(names), metrics=computed)
