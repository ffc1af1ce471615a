"""``bench run``: plan the grid of runs, check everything that can be checked, then run each one.

1. ``validate``: names, options (ranges, finite numbers), sizes each method can train at, the eval
   settings and a writable output folder -- all before the first training step;
2. ``prepare`` (``bench.engine.context``): the dataset decoded once, metrics and weights (a :class:`RunContext`);
3. ``plan``: one :class:`RunIdentity` per method x seed (the run identity; ``bench.store.identity``);
4. a launcher (``bench.launch``: ``local``, ``local --jobs N`` or ``ray``) computes the reference
   rows (gray input, ground truth) of this test set and runs every identity
   (``bench.engine.execute``): finished runs are skipped, interrupted ones resume.

SIGTERM and the first Ctrl-C stop the runs in progress at their next step, with their state saved;
running the same command again resumes them.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path


from bench import launch, registry
from bench.engine import live
from bench.engine.distributed import check_supported
from bench.engine.probe import COMPILE_MODES
from bench.engine.context import MAX_TEST_DRAWS, RunConfig, RunContext, prepare, resolve_precision
from bench.engine.run_folder import finished_result
from bench.errors import BenchError
from bench.progress import log
from bench.store.identity import RunIdentity, budget_key, identity_hardware
from bench.store.atomic import temp_path



def check_writable(out: Path) -> None:
    """The output folder can take files (else the first method's whole budget would be lost)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file: give a folder for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = temp_path(out / ".write-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise BenchError(f"--out {out} is not writable ({error.strerror or error})") from None


def validate(config: RunConfig) -> None:
    """Fail fast, before any training, on everything the user controls: the one place a run's config is checked
    (the launchers' settings by ``bench.launch.check``, called here; the command line checks only what it needs
    before a config exists: the names it splits, --gpus before it starts torchrun)."""
    if config.size is not None and config.size < 16:
        raise BenchError(f"--size {config.size}: at least 16 pixels")
    if config.eval_batch_size < 1:
        raise BenchError(f"--eval-batch-size {config.eval_batch_size}: at least 1")
    if not 1 <= config.test_draws <= MAX_TEST_DRAWS:
        raise BenchError(f"--test-draws {config.test_draws}: from 1 to {MAX_TEST_DRAWS}")
    if config.samples < 0:
        raise BenchError(f"--samples {config.samples}: 0 or more")
    if not config.checkpoint_every > 0:
        raise BenchError(f"--checkpoint-every: must be positive, got {config.checkpoint_every}")
    if config.tensorboard:
        live.check_available()
    resolve_precision(config.precision, config.device)
    if config.compile_mode is not None and config.compile_mode not in COMPILE_MODES:
        raise BenchError(f"--compile {config.compile_mode!r}: choose one of {', '.join(COMPILE_MODES)}")
    registry.datasets().get(config.dataset)
    for metric in config.metrics or []:
        registry.metrics().get(metric)
    for method in config.methods:
        cls = registry.methods().get(method).cls
        options = cls.Options.from_dict(config.method_options.get(method, {}))
        if config.size is not None:
            cls.check_size(config.size, options)
        check_supported(cls, config.device, config.world)
    if config.world.distributed and (config.launcher != "local" or config.jobs > 1):
        raise BenchError("under torchrun (--gpus) every process trains the same run: drop --launcher ray / --jobs")
    launch.check(config)
    check_writable(config.out)


def plan(config: RunConfig, context: RunContext) -> list[RunIdentity]:
    """One identity per seed x method, in the order they run."""
    precision = resolve_precision(config.precision, config.device)
    hardware = context.hardware[2]
    dataset_options = context.dataset.options.to_dict()
    identities = []
    for seed in config.seeds:
        for method in config.methods:
            cls = registry.methods().get(method).cls
            options = cls.Options.from_dict(config.method_options.get(method, {})).to_dict()
            defaults = cls.Options().to_dict()
            budget = budget_key(config.budget.kind, config.budget.value)
            identities.append(RunIdentity(
                dataset=context.dataset.name, dataset_options=dataset_options, size=context.size,
                budget=budget, method=method, method_options=options,
                precision=precision, hardware=identity_hardware(budget, hardware), seed=seed,
                changed_options={k: v for k, v in options.items() if defaults.get(k) != v},
            ))
    return identities


def _duration(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def planned_work(config: RunConfig, context: RunContext, identities: list[RunIdentity]) -> str:
    """One line before a grid starts: how many runs, how many are done, and what the rest will take."""
    methods = len(config.methods)
    todo = sum(config.force or finished_result(i, i.folder(context.out), quiet=True) is None for i in identities)
    runs, seeds = len(identities), len(config.seeds)
    text = (f"plan: {runs} run{'s' * (runs > 1)} ({methods} method{'s' * (methods > 1)} x {seeds} "
            f"seed{'s' * (seeds > 1)}) at {config.budget.label}")
    if todo < len(identities):
        text += f", {len(identities) - todo} already done"
    if not todo:
        return text + ": nothing to train"
    if config.budget.kind != "time":
        return text + f": {todo} to train (how long a step takes depends on the method; see the README's budget table)"
    parallel = config.jobs if config.launcher == "local" else None
    where = f"{parallel} at a time" if parallel else "on the Ray cluster, as many at a time as it has devices"
    total = todo * config.budget.value / (parallel or 1)
    return (text + f": {todo} to train, about {_duration(total)} of training{' at most' if not parallel else ''} "
            f"({where}), plus probing and scoring")


class StopRequest:
    """Set by SIGTERM or the first Ctrl-C; the training loop checks it between steps."""

    def __init__(self):
        self.signal: str | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum, frame):
            if signum == signal.SIGINT and self.signal is not None:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            self.signal = signal.Signals(signum).name
            log(f"{self.signal}: saving the run in progress; run the same command again to resume")

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def run_benchmark(config: RunConfig) -> list[dict]:
    validate(config)
    context = prepare(config)  # decoded here first: the launcher's workers read the decode cache
    identities = plan(config, context)
    log(planned_work(config, context, identities))
    demo = config.budget.demo_reason(config.device.type)
    if demo:
        log(f"note: this is a demo, not a publishable benchmark: {demo}")
    stop = StopRequest()
    with stop.installed():
        results = launch.launch(config, context, identities, stop)
    actions = {}
    for result in results:
        action = result["_action"].split(" at ")[0]
        actions[action] = actions.get(action, 0) + 1
    log("runs: " + ", ".join(f"{n} {a}" for a, n in actions.items()) + f" (results in {os.fspath(config.out)})")
    return results
