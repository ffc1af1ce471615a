"""One run, start to finish: skip / resume / train -> colorize + score (``scoring``) -> run folder.

``execute_run`` is self-contained given a :class:`RunIdentity` and a :class:`RunContext` (the decoded
data, metrics and weights shared by the runs of one process), so any launcher can call it. It writes
files only: the launcher indexes the run folder in the SQLite index afterwards (``bench.launch.driver``).

A run folder holds ``result.json``, ``checkpoint.pt``, ``samples/``, while training ``resume.pt`` and,
with --tensorboard, ``tensorboard/`` (``bench.engine.live``). Files land atomically; ``result.json`` is
written after the files it describes; ``resume.pt`` goes once the result is written.

On several ranks (torchrun; ``bench.engine.distributed``) every rank trains and colorizes its share
of the test split; rank 0 takes the decisions (skip, resume), scores and writes every file.
"""

from __future__ import annotations

import contextlib
import random
import time
import traceback

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import registry
from bench.data import BatchSampler
from bench.engine.checkpoint import save_checkpoint
from bench.engine.distributed import World, check_supported, parallelize
from bench.engine.live import live_view
from bench.engine.probe import probe, utilisation
from bench.engine.resume import RESUME_FILE, load_resume, save_resume
from bench.engine.context import RunContext
from bench.engine.run_folder import CHECKPOINT_FILE, finished_result, prepare_folder, run_label, write_run
from bench.evaluation.test_split import score_method
from bench.engine.training import Interrupted, train
from bench.environment import environment
from bench.errors import BenchError, Unavailable
from bench.method import MethodContext
from bench.progress import log
from bench.store import results
from bench.store.atomic import os_reason
from bench.store.lock import RunLocked, run_lock
from bench.store.identity import RunIdentity, budget_key

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _header(identity: RunIdentity, context: RunContext, environment_info: dict | None = None) -> dict:
    entry = registry.methods().get(identity.method)
    # The device this run trains on (a compute-budget identity holds ANY_HARDWARE instead).
    hardware_name, count, hardware = context.hardware
    return results.result_header(
        "method", identity, method=identity.method, plugin=entry.plugin, description=entry.description,
        seed=identity.seed, environment=environment(context.device) if environment_info is None else environment_info,
        config_hash=identity.config_hash,
        changed_options=identity.changed_options,
        hardware={"device": hardware_name, "count": count, "class": hardware},
        precision=identity.precision,
        demo=context.budget.demo_reason(context.device.type),
        budget=context.budget.to_dict() | {"used": 0.0, "steps": 0, "seconds": 0.0, "images": 0, "flops": 0,
                                           "epochs": 0.0},
        metrics={},
        metric_details={},
        config=identity.to_dict() | {"budget_label": context.budget.label, "metrics": context.metric_names,
                                     "eval_batch_size": context.eval_batch_size, "test_draws": context.test_draws},
        data={
            "info": context.dataset.info(),
            "train_images": len(context.train_set),
            "test_images": len(context.test_set),
            "dropped": {"train": context.train_set.dropped, "test": context.test_set.dropped},
        },
    )


def _build_method(cls, options, identity: RunIdentity, context: RunContext):
    """The method, and what building it cost: ``init_s`` and ``init_flops`` (FLOPs of every matmul and
    convolution run inside ``__init__``, e.g. a dummy forward to size a network)."""
    counter = FlopCounterMode(display=False)
    start = time.perf_counter()
    with counter:
        method = cls(options, MethodContext(size=identity.size, device=context.device, weights=context.weights))
    return method, {"init_s": time.perf_counter() - start, "init_flops": int(counter.get_total_flops())}


def _check_init(name: str, built: dict, probed: dict) -> None:
    """Training belongs inside the budget: ``__init__`` may build networks and load weights, and run up to
    one training step's worth of FLOPs (a shape-finding forward pass), no more."""
    step = probed.get("flops_per_step") or 0
    if built["init_flops"] > max(step, 1):
        raise BenchError(f"{name} computed {built['init_flops']:.3g} FLOPs in __init__ ({built['init_flops'] / max(step, 1):.1f} "
                         f"training steps' worth): training outside the budget is refused; build networks and load "
                         f"weights in __init__, train in train_step")


def _what_it_got(record, context: RunContext, probed: dict, world: World) -> dict:
    """Every measure of the training a run got: seconds, steps, images, FLOPs, epochs."""
    flops = (probed.get("flops_per_step") or 0) * world.size * record.steps
    return {"used": {"time": record.seconds, "steps": record.steps, "epochs": record.images / len(context.train_set),
                     "images": record.images, "flops": flops}[context.budget.kind],
            "steps": record.steps, "seconds": record.seconds, "images": record.images, "flops": flops,
            "epochs": record.images / len(context.train_set)}


def execute_run(identity: RunIdentity, context: RunContext) -> dict:
    """Run (or skip, or resume) one run; returns its result (``_action`` says which)."""
    planned = (identity.size, identity.budget)
    if planned != (context.size, budget_key(context.budget.kind, context.budget.value)):  # one run, one description
        raise BenchError(f"{run_label(identity)} was planned at {identity.size}px for {identity.budget}, but this "
                         f"process has {context.size}px and {context.budget.label}")
    result = _execute_run(identity, context, context.world)
    context.world.barrier()  # rank 0 has written this run before any rank looks at the next
    return result


LOCKED = "locked"
# Training shorter than this is cheaper to redo than its full state is to write (100-400 MB, 0.4-1.7 s on a
# 2-core CPU at 32 px), so only longer runs save it before scoring.
RESUME_BEFORE_SCORING_S = 30.0


def _execute_run(identity: RunIdentity, context: RunContext, world: World) -> dict:
    """Rank 0 holds the run folder's lock (``bench.store.lock``) from the skip decision to the written result;
    a run another live process holds is not run here (status ``locked``, nothing written)."""
    with contextlib.ExitStack() as held:
        locked = None
        if world.is_main:
            try:
                held.enter_context(run_lock(identity.folder(context.out)))
            except RunLocked as error:
                locked = _header(identity, context) | {
                    "status": LOCKED, "error": f"{error}, which is running it (not run here)", "_action": LOCKED}
                log(f"{run_label(identity)}: {locked['error']}")
        locked = world.broadcast(locked)
        if locked is not None:
            return locked
        return _execute_locked(identity, context, world)


def _execute_locked(identity: RunIdentity, context: RunContext, world: World) -> dict:
    label = run_label(identity)
    skipped, folder = world.broadcast(prepare_folder(identity, context) if world.is_main else None)
    if skipped is not None:
        return skipped
    resume_path = folder / RESUME_FILE  # folder: the run's own, or its --force replacement's (run_folder)
    resuming = world.broadcast(resume_path.exists())

    result = _header(identity, context)
    action = "started"
    try:
        seed_everything(identity.seed)
        entry = registry.methods().get(identity.method)
        check_supported(entry.cls, context.device, world)
        options = entry.cls.Options.from_dict(identity.method_options)
        method, built = _build_method(entry.cls, options, identity, context)
        result["parameters"] = method.parameter_counts()
        if context.device.type == "cuda":  # tensor-core convolutions want NHWC; a no-op for the maths
            for net in method.nets.values():
                net.to(memory_format=torch.channels_last)
        sampler = BatchSampler(context.train_set.images, size=identity.size, batch_size=options.batch_size,
                               seed=identity.seed, device=context.device, unpaired=method.unpaired,
                               shard=(world.rank, world.size))
        record = None
        if resuming:
            record = load_resume(resume_path, identity.run_key, method, sampler)
            action = (f"resumed at scoring (trained {record.steps} steps)" if record.trained
                      else f"resumed at step {record.steps}")
        log(f"{label}: {action}" + ("" if record is None else f" ({record.seconds:.1f} s of the budget used)"))
        probed = probe(method, sampler, precision=identity.precision, compile_mode=context.compile_mode)
        _check_init(identity.method, built, probed)
        images_per_step = options.batch_size * (2 if method.unpaired else 1) * world.size
        budget = context.budget.resolve(images_per_step=images_per_step, train_images=len(context.train_set),
                                        flops_per_step=(probed.get("flops_per_step") or 0) * world.size)

        if record is None or not record.trained:
            with live_view(context.tensorboard and world.is_main, folder, method, context.test_set.images,
                           seed=identity.seed, record=record) as live:
                def save(state):
                    if world.is_main:
                        save_resume(resume_path, identity.run_key, method, sampler, state)

                def checkpoint(state):
                    save(state)
                    live.samples(state)  # --tensorboard: what the run colorizes so far

                with parallelize(method, world):
                    record = train(method, sampler, budget, label=f"train {label}", record=record,
                                   precision=identity.precision, on_checkpoint=checkpoint,
                                   checkpoint_every=context.checkpoint_every, should_stop=context.should_stop,
                                   on_flush=live.losses, world=world)
                record.trained = True
                if record.seconds >= RESUME_BEFORE_SCORING_S:  # a crash while scoring resumes here, not at step 0
                    save(record)  # (resume.pt goes with the written result)
                live.samples(record)  # the trained network's grid
        wall_s = record.seconds / world.size  # the clock counts GPU-seconds
        result["budget"].update(_what_it_got(record, context, probed, world))
        if budget is not context.budget:  # a compute budget, resolved for this method before training
            result["budget"]["planned_steps"] = budget.value
        result["demo"] = context.budget.demo_reason(context.device.type, result["budget"]["epochs"])
        result["history"] = record.history()
        result["timings"] = {
            **built,
            "batch_size": options.batch_size,
            "train_s": wall_s,
            "world_size": world.size,
            "gpu_s": record.seconds,
            "global_batch": options.batch_size * world.size,
            "steps": record.steps,
            "steps_per_s": record.steps / wall_s if wall_s else None,
            "train_images_per_s": record.images / wall_s if wall_s else None,
            **probed,  # per device
            **utilisation(probed, steps=record.steps, seconds=wall_s,
                          device_name=result["hardware"]["device"], precision=identity.precision),
        }
        if world.is_main:
            save_checkpoint(folder / CHECKPOINT_FILE, method, identity.method, identity.dataset, record.steps,
                            run_key=identity.run_key)
        score_method(method, context, result, folder, label, seed=identity.seed)
    except Interrupted as stop:
        result.update(status="interrupted", error=f"interrupted: {stop} (resume with the same command)")
        if stop.record is not None:  # what it had trained when it stopped
            result["budget"].update(_what_it_got(stop.record, context, probed, world))
        write_run(result, context, identity, folder, world)
        log(f"{label}: {result['error']}")
        stop.result = result
        raise
    except Unavailable as error:
        result.update(status="skipped", error=str(error))
        action = "skipped (unavailable here)"
    except BenchError as error:  # Diverged included: failed, never scored
        _failed(result, str(error))
    except OSError as error:  # a full disk: said as such, in one line
        _failed(result, (f"cannot write {error.filename}: " if error.filename else "") + os_reason(error))
    except Exception as error:  # a failing method is recorded, and the others go on
        _failed(result, f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        if world.distributed:  # the other ranks may be waiting in a collective: torchrun ends them all
            write_run(result, context, identity, folder, world)
            raise
    if result["status"] != "ok":
        log(f"{label}: {results.status_text(result)}")
    try:
        write_run(result, context, identity, folder, world)
    except OSError as error:  # e.g. the disk is full: the run is not recorded; what was finished before stays
        unrecorded = f"its result could not be written ({os_reason(error)}): it runs again next time"
        log(f"{label}: {unrecorded}")
        result.update(status="failed", error=f"{result['error']}; {unrecorded}" if result["error"] else unrecorded)
    return result | {"_action": action}


def _failed(result: dict, error: str, **more) -> None:
    """A run that failed: its error, and no scores (a partial scoring is never recorded)."""
    result.update(status="failed", error=error, metrics={}, metric_details={}, **more)
    result.pop("per_image", None)


def record_failure(identity: RunIdentity, context: RunContext, error: str) -> dict:
    """A run that returned no result (its worker was lost: node gone, out of memory; or it raised
    before the run began): recorded ``failed`` with ``error`` by a launcher's driver.

    A result its worker finished before it was lost is kept, and so is its resume state: running
    the same command again resumes it.
    """
    folder = identity.folder(context.out)
    finished = finished_result(identity, folder)
    if finished is not None:
        return finished | {"_action": "finished before its worker was lost"}
    if (folder / RESUME_FILE).exists():
        error += " (run the same command again to resume from its last checkpoint)"
    result = _header(identity, context, environment_info={"recorded_by": "the launcher's driver"})
    result.update(status="failed", error=error)
    log(f"{run_label(identity)}: failed: {error}")
    results.write_result(folder, result)
    return result | {"_action": "not run to the end"}
