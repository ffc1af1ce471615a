"""One run, start to finish: skip / resume / train -> colorize + score in one pass -> run folder.

``execute_run`` is self-contained given a :class:`RunIdentity` and a :class:`RunContext` (the decoded
data, metrics and weights shared by the runs of one process), so any launcher can call it. A
launcher's workers set ``RunContext.write_index = False``: only the driver writes the SQLite index,
from the results they return (``bench.launch``).

A run folder holds ``result.json``, ``checkpoint.pt``, ``samples/`` and, while training,
``resume.pt``. Files land atomically; ``result.json`` is written after the files it describes and
the index row after it; ``resume.pt`` goes once the result is written.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench import registry
from bench.color import float_to_uint8, normalized_lab_to_rgb, rgb_to_normalized_lab, uint8_to_float
from bench.data import BatchSampler, ImageSet
from bench.engine.budget import Budget
from bench.engine.checkpoint import save_checkpoint
from bench.engine.probe import probe, utilisation
from bench.engine.resume import RESUME_FILE, load_resume, save_resume
from bench.engine.training import Diverged, Interrupted, train
from bench.environment import environment
from bench.errors import BenchError, Unavailable
from bench.evaluate import build_metrics, evaluate
from bench.inference import gray_uint8, sample_indices
from bench.method import MethodContext
from bench.progress import log
from bench.store import index, results
from bench.store.identity import ReferenceIdentity, RunIdentity, safe_name

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class RunContext:
    """What the runs of one process share: data decoded once, metrics, weights, settings."""

    dataset: object  # bench.dataset.Dataset
    size: int
    train_set: ImageSet
    test_set: ImageSet
    weights: object  # bench.weights.WeightStore
    metric_context: object  # bench.metric.MetricContext
    metric_names: list[str]
    device: torch.device
    budget: Budget
    out: Path
    eval_batch_size: int = 32
    samples: int = 8
    checkpoint_every: float = 300.0
    force: bool = False
    fresh: bool = False
    compile_mode: str | None = None  # torch.compile mode for every method's networks (None: eager)
    should_stop: object = field(default=lambda: False)
    write_index: bool = True  # False in a launcher's workers: the driver indexes what they return


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_label(identity: RunIdentity) -> str:
    return f"{identity.method} seed {identity.seed}"


def _header(identity: RunIdentity, context: RunContext, environment_info: dict | None = None) -> dict:
    entry = registry.methods().get(identity.method)
    hardware_name, _, count = identity.hardware.rpartition(" x")
    return {
        "schema": results.SCHEMA,
        "kind": "method",
        "method": identity.method,
        "method_plugin": entry.plugin,
        "method_description": entry.description,
        "dataset": identity.dataset,
        "size": identity.size,
        "seed": identity.seed,
        "status": "ok",
        "error": None,
        "identity": identity.to_dict(),
        "run_key": identity.run_key,
        "config_hash": identity.config_hash,
        "changed_options": identity.changed_options,
        "hardware": {"device": hardware_name, "count": int(count), "class": identity.hardware},
        "precision": identity.precision,
        "demo": context.budget.demo_reason(context.device.type),
        "budget": context.budget.to_dict() | {"used": 0.0, "steps": 0},
        "metrics": {},
        "metric_details": {},
        "timings": {},
        "environment": environment(context.device) if environment_info is None else environment_info,
        "config": identity.to_dict() | {"budget_label": context.budget.label, "metrics": context.metric_names,
                                        "eval_batch_size": context.eval_batch_size},
        "data": {
            "info": context.dataset.info(),
            "train_images": len(context.train_set),
            "test_images": len(context.test_set),
            "dropped": {"train": context.train_set.dropped, "test": context.test_set.dropped},
        },
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _clear(folder: Path, context: RunContext) -> None:
    """--force: the previous result of this run goes (said in the log), with its index row."""
    for name in (results.RESULT_FILE, CHECKPOINT_FILE, RESUME_FILE):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "samples", ignore_errors=True)
    if context.write_index:  # else the driver replaces the row with the new result
        index.remove(context.out, folder)


def _finished(identity: RunIdentity, folder: Path) -> dict | None:
    """The run's finished result in its folder (status ok, same run key), or None."""
    try:
        previous = results.read_result(folder)
    except BenchError as error:  # a damaged result.json is redone, and said so
        log(f"{run_label(identity)}: {error}; running it again")
        return None
    if previous and previous.get("status") == "ok" and previous.get("run_key") == identity.run_key:
        return previous
    return None


SKIPPED = "skipped (already done)"


def skip_finished(identity: RunIdentity, context: RunContext) -> dict | None:
    """The result of a finished run that is to be skipped (no --force), said in the log; else None."""
    folder = identity.folder(context.out)
    previous = None if context.force else _finished(identity, folder)
    if previous is not None:
        log(f"{run_label(identity)}: already done in {folder} (skipped; --force runs it again)")
        return previous | {"_action": SKIPPED}
    return None


def execute_run(identity: RunIdentity, context: RunContext) -> dict:
    """Run (or skip, or resume) one run; returns its result (``_action`` says which)."""
    folder = identity.folder(context.out)
    label = run_label(identity)
    results.clean_orphans(folder)
    skipped = skip_finished(identity, context)
    if skipped is not None:
        return skipped
    if context.force and _finished(identity, folder) is not None:
        log(f"{label}: replacing the finished run in {folder} (--force)")
        _clear(folder, context)
    resume_path = folder / RESUME_FILE
    if context.fresh and resume_path.exists():
        log(f"{label}: --fresh: discarding the resume state in {folder}")
        resume_path.unlink()

    result = _header(identity, context)
    action = "started"
    try:
        seed_everything(identity.seed)
        entry = registry.methods().get(identity.method)
        options = entry.cls.Options.from_dict(identity.method_options)
        method = entry.cls(options, MethodContext(size=identity.size, device=context.device, weights=context.weights))
        result["parameters"] = method.parameter_counts()
        if context.device.type == "cuda":  # tensor-core convolutions want NHWC; a no-op for the maths
            for net in method.nets.values():
                net.to(memory_format=torch.channels_last)
        sampler = BatchSampler(context.train_set.images, size=identity.size, batch_size=options.batch_size,
                               seed=identity.seed, device=context.device, unpaired=method.unpaired)
        record = None
        if resume_path.exists():
            record = load_resume(resume_path, identity.run_key, method, sampler)
            action = f"resumed at step {record.steps}"
        log(f"{label}: {action}" + ("" if record is None else f" ({record.seconds:.1f} s of the budget used)"))
        probed = probe(method, sampler, precision=identity.precision, compile_mode=context.compile_mode)

        def checkpoint(state):
            save_resume(resume_path, identity.run_key, method, sampler, state)

        record = train(method, sampler, context.budget, label=f"train {label}", record=record,
                       precision=identity.precision, on_checkpoint=checkpoint,
                       checkpoint_every=context.checkpoint_every, should_stop=context.should_stop)
        result["budget"].update(used=record.seconds if context.budget.kind == "time" else record.steps,
                                steps=record.steps)
        result["history"] = record.history()
        result["timings"] = {
            "train_s": record.seconds,
            "steps": record.steps,
            "steps_per_s": record.steps / record.seconds if record.seconds else None,
            "train_images_per_s": record.images / record.seconds if record.seconds else None,
            **probed,
            **utilisation(probed, steps=record.steps, seconds=record.seconds,
                          device_name=result["hardware"]["device"], precision=identity.precision),
        }
        save_checkpoint(folder / CHECKPOINT_FILE, method, identity.method, identity.dataset, record.steps,
                        run_key=identity.run_key)
        score_method(method, context, result, folder, label)
    except Interrupted as stop:
        result.update(status="interrupted", error=f"interrupted: {stop} (resume with the same command)")
        results.write_result(context.out, folder, result, index=context.write_index)
        log(f"{label}: {result['error']}")
        raise
    except Unavailable as error:
        result.update(status="skipped", error=str(error))
    except BenchError as error:  # Diverged included: failed, never scored
        result.update(status="failed", error=str(error), metrics={}, metric_details={})
        result.pop("per_image", None)
    except Exception as error:  # a failing method is recorded, and the others go on
        result.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc(),
                      metrics={}, metric_details={})
        result.pop("per_image", None)
    if result["status"] != "ok":
        log(f"{label}: {result['status']}: {result['error']}")
    results.write_result(context.out, folder, result, index=context.write_index)
    if result["status"] == "ok":
        resume_path.unlink(missing_ok=True)
    return result | {"_action": action}


def record_failure(identity: RunIdentity, context: RunContext, error: str) -> dict:
    """A run that returned no result (its worker was lost: node gone, out of memory; or it raised
    before the run began): recorded ``failed`` with ``error`` by a launcher's driver.

    A result its worker finished before it was lost is kept, and so is its resume state: running
    the same command again resumes it.
    """
    folder = identity.folder(context.out)
    finished = _finished(identity, folder)
    if finished is not None:
        if context.write_index:
            index.index_result(context.out, folder / results.RESULT_FILE, finished)
        return finished | {"_action": "finished before its worker was lost"}
    if (folder / RESUME_FILE).exists():
        error += " (run the same command again to resume from its last checkpoint)"
    result = _header(identity, context, environment_info={"recorded_by": "the launcher's driver"})
    result.update(status="failed", error=error)
    log(f"{run_label(identity)}: failed: {error}")
    results.write_result(context.out, folder, result, index=context.write_index)
    return result | {"_action": "not run to the end"}


def _colorized(method, images: torch.Tensor, batch_size: int, device, keep: dict, bad: list, seconds: list):
    """(prediction, target) uint8 batches on the device, colorized as they are scored (one pass).

    Predictions at the ``keep`` indices are kept for the samples; ``bad[0]`` becomes a device flag
    of non-finite outputs, read once after the pass (no per-batch synchronisation).
    """
    method.eval_mode()
    for first in range(0, images.shape[0], batch_size):
        target = images[first : first + batch_size].to(device, non_blocking=True)
        start = time.perf_counter()
        with torch.no_grad():
            L, _ = rgb_to_normalized_lab(uint8_to_float(target))
            ab = method.colorize(L)
            finite = torch.isfinite(ab).all()
            bad[0] = ~finite if bad[0] is None else bad[0] | ~finite
            pred = float_to_uint8(normalized_lab_to_rgb(L, torch.nan_to_num(ab)))
        seconds[0] += time.perf_counter() - start
        for position in keep:
            if first <= position < first + target.shape[0]:
                keep[position] = pred[position - first]
        yield pred, target


def score_method(method, context: RunContext, result: dict, folder: Path, label: str) -> None:
    """Colorize the test split and score it in one pass; fill the result; write the samples."""
    test_set = context.test_set
    keep = dict.fromkeys(sample_indices(context.samples, len(test_set)))
    bad, colorize_s = [None], [0.0]
    metrics, unavailable = build_metrics(context.metric_names, context.metric_context)
    start = time.perf_counter()
    batches = _colorized(method, test_set.images, context.eval_batch_size, context.device, keep, bad, colorize_s)
    details = unavailable | evaluate(batches, metrics, len(test_set), label=f"score {label}")
    eval_s = time.perf_counter() - start
    if bad[0] is not None and bool(bad[0]):
        raise Diverged("diverged: non-finite output when colorizing the test split")
    _fill_scores(result, details, context, eval_s)
    result["timings"].update(colorize_host_s=colorize_s[0])
    result["samples"] = save_samples(folder, keep, test_set)


def _fill_scores(result: dict, details: dict, context: RunContext, eval_s: float) -> None:
    details = {name: details[name] for name in context.metric_names}
    result["timings"].update(eval_s=eval_s, eval_images_per_s=len(context.test_set) / eval_s if eval_s else None)
    result["per_image"] = {"names": context.test_set.names} | {
        name: d.pop("per_image") for name, d in details.items() if "per_image" in d
    }
    for detail in details.values():  # e.g. PSNR of identical images: +inf, which JSON cannot hold
        if isinstance(detail.get("value"), float) and detail["value"] == float("inf"):
            detail["infinite"] = True
    result["metric_details"] = details
    result["metrics"] = {name: d.get("value") for name, d in details.items()}


def save_samples(folder: Path, kept: dict, test_set: ImageSet) -> list[dict]:
    """A few test images as PNGs: the gray input, this method's output, the ground truth."""
    directory = folder / "samples"
    directory.mkdir(parents=True, exist_ok=True)
    samples = []
    for k, (position, pred) in enumerate(sorted(kept.items())):
        truth = test_set.images[position : position + 1]
        stem = f"{k:02d}-{safe_name(test_set.names[position])}"
        files = {"gray": f"{stem}.gray.png", "pred": f"{stem}.pred.png", "truth": f"{stem}.truth.png"}
        for key, image in (("gray", gray_uint8(truth)[0]), ("pred", pred), ("truth", truth[0])):
            png = Image.fromarray(image.permute(1, 2, 0).cpu().numpy())
            results.atomic_write(directory / files[key], lambda tmp, png=png: png.save(tmp, format="PNG"))
        samples.append({"name": test_set.names[position], "index": position} | {k2: f"samples/{v}" for k2, v in files.items()})
    return samples


REFERENCES = {"gray": "gray input", "truth": "ground truth"}


def execute_reference(reference: str, context: RunContext, dataset_options: dict) -> dict:
    """A reference row (gray input or ground truth), scored by the same metric code on the same images."""
    identity = ReferenceIdentity(context.dataset.name, dataset_options, context.size, reference)
    folder = identity.folder(context.out)
    previous = results.read_result(folder) if (folder / results.RESULT_FILE).is_file() else None
    if previous and previous.get("status") == "ok" and all(
        (previous.get("metric_details") or {}).get(n, {}).get("status") == "ok" for n in context.metric_names
    ):
        return previous
    targets = context.test_set.images
    result = {
        "schema": results.SCHEMA, "kind": "reference", "reference": reference, "method": REFERENCES[reference],
        "method_plugin": "colorbench (reference)",
        "method_description": {"gray": "the gray input itself (ab = 0): what doing nothing scores",
                               "truth": "the ground truth against itself: the ceiling of each metric"}[reference],
        "dataset": identity.dataset, "size": identity.size, "seed": None, "status": "ok", "error": None,
        "identity": identity.to_dict(), "run_key": identity.run_key, "budget": {}, "timings": {},
        "environment": environment(context.device),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    metrics, unavailable = build_metrics(context.metric_names, context.metric_context)
    bs = context.eval_batch_size

    def batches():
        for first in range(0, targets.shape[0], bs):
            target = targets[first : first + bs].to(context.device)
            yield (gray_uint8(target) if reference == "gray" else target), target

    start = time.perf_counter()
    details = unavailable | evaluate(batches(), metrics, targets.shape[0], label=f"score reference {reference}")
    _fill_scores(result, details, context, time.perf_counter() - start)
    results.write_result(context.out, folder, result, index=context.write_index)
    return result
