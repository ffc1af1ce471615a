"""``bench run``: its parser, the option parsing it needs, and the results table."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from bench.cli.common import EXAMPLES, parse_assignments, split_list, stdout_console
from bench.cli.summary import results_table
from bench.errors import BenchError


def parse_seeds(text: str) -> list[int]:
    try:
        if "," in text:
            seeds = [int(s) for s in split_list(text)]
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = list(range(count))
    except ValueError:
        raise BenchError(f"--seeds {text!r}: a count (3 -> seeds 0,1,2) or a list (0,7,42)") from None
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise BenchError(f"--seeds {text!r}: seeds must be distinct and non-negative")
    return seeds


def method_options(methods: list[str], items: list[str]) -> dict[str, dict]:
    """-o METHOD.KEY=VALUE applies to one method; -o KEY=VALUE to every method that has KEY."""
    from bench import registry

    options: dict[str, dict] = {m: {} for m in methods}
    for key, value in parse_assignments(items, "-o").items():
        target, dot, option = key.rpartition(".")
        if dot:
            if target not in options:
                raise BenchError(f"-o {key}: method {target!r} is not part of this run ({', '.join(methods)})")
            options[target][option] = value
            continue
        takers = [m for m in methods if option in registry.methods().get(m).cls.Options.describe()]
        if not takers:
            raise BenchError(f"-o {key}: no method in this run has an option {option!r} (see `bench list --json`)")
        for m in takers:
            options[m][option] = value
    return options


def cmd_run(args) -> int:
    from bench import registry
    from bench.engine.budget import DEFAULT, parse_budgets
    from bench.environment import resolve_device, untested_warning
    from bench.launch import torchrun
    from bench.progress import log
    from bench.engine.context import RunConfig
    from bench.runner import run_benchmark

    methods = registry.list_methods() if args.methods == "all" else split_list(args.methods)
    if not methods:
        raise BenchError("--methods: name at least one method, or all")
    dataset, _, path = args.dataset.partition(":")
    dataset_options = parse_assignments(args.dataset_option, "--dataset-option")
    if path:
        dataset_options.setdefault("path", path)
    if args.gpus < 1:
        raise BenchError(f"--gpus {args.gpus}: at least 1")
    if args.gpus > 1 and not torchrun.under_torchrun():
        return torchrun.relaunch(args.argv, args.gpus, resolve_device(args.device))
    if args.launcher == "ray":  # the cluster's GPUs, which this machine may not have
        from bench.launch.ray import cluster_device

        device, device_label = cluster_device(args.device, args.ray_address)
    else:
        device, device_label = resolve_device(args.device), None
    budgets = parse_budgets(args.budget or DEFAULT)  # several: a curve, every method at every budget
    world, device = torchrun.join(device)  # one process: World()
    config = RunConfig(
        methods=methods,
        dataset=dataset,
        budget=budgets[0],
        device=device,
        device_name=device_label,
        out=Path(args.out),
        size=args.size,
        seeds=parse_seeds(args.seeds),
        metrics=split_list(args.metrics) if args.metrics else None,
        method_options=method_options(methods, args.option),
        dataset_options=dataset_options,
        data_root=args.data_root,
        weights_dir=args.weights_dir,
        eval_batch_size=args.eval_batch_size,
        test_draws=args.test_draws,
        samples=args.samples,
        precision=args.precision,
        force=args.force,
        fresh=args.fresh,
        checkpoint_every=args.checkpoint_every * 60,
        tensorboard=args.tensorboard,
        compile_mode=args.compile,
        launcher=args.launcher,
        jobs=args.jobs,
        ray_address=args.ray_address,
        cpus_per_run=args.cpus_per_run,
        world=world,
    )
    if world.is_main and (warning := untested_warning()):
        log(warning)
    try:
        results = [r for budget in budgets for r in run_benchmark(replace(config, budget=budget))]
    finally:
        world.close()
    if not world.is_main:
        return 0  # rank 0 says how the run went (torchrun ends the others when one exits non-zero first)
    for r in results:
        r["action"] = r.pop("_action")
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k not in ("per_image", "history")} for r in results], indent=2))
    else:
        print_results(results)
    return exit_status(results)


EXIT_NOT_ALL_DONE = 3
EXIT_STATUSES = f"""\
exit status:
  0   every run finished ok (runs skipped as unavailable here, e.g. missing pretrained weights, say why)
  {EXIT_NOT_ALL_DONE}   a run failed, diverged or was interrupted, or none finished ok: its result.json says why,
      the other runs are kept; running the same command again redoes (or resumes) only those; or a run
      was locked by another process that is running it (not run here)
  2   a one-line error: bad input, nothing trained; or stopped by SIGTERM / Ctrl-C (run it again to resume)
  130 stopped at once (a second Ctrl-C)
"""


def exit_status(results: list[dict]) -> int:
    """0 when every run finished ok (or was skipped as unavailable), else EXIT_NOT_ALL_DONE."""
    if any(r["status"] in ("failed", "interrupted", "locked") for r in results) or not any(r["status"] == "ok" for r in results):
        return EXIT_NOT_ALL_DONE
    return 0


def print_results(results: list[dict]) -> None:
    """The closing table (``bench.cli.summary``), then what was missing and the runs that are not ok."""
    console = stdout_console()
    table, lines = results_table(results, console.width)
    console.print(table)
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def add_run_parser(sub) -> None:
    """``bench run``."""
    p = sub.add_parser(
        "run", help="train and score methods on a dataset under one budget (or several: a curve)",
        description="Train every chosen method (x seed) under the same budget, colorize the test split, score it, "
        "and write <out>/<dataset>/<method>/<size>px-<budget>-<config hash>/seed<k>/result.json plus the SQLite "
        "index <out>/runs.sqlite. A run is identified by dataset (+options), size, budget, method (+options), "
        "precision, hardware and seed: a finished run is skipped when asked again (--force replaces it), and an "
        "interrupted one (kill, Ctrl-C, SIGTERM) resumes from its last checkpoint.",
        epilog=EXAMPLES + "\n" + EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--methods", default="all", help="'all' or a comma list, e.g. baseline,pix2pix (default: all)")
    p.add_argument("--dataset", default="sample",
                   help="dataset name (see `bench list`); 'folder:PATH' for your own images (default: sample)")
    p.add_argument("--size", type=int, default=None, help="image size in pixels (default: the dataset's, e.g. 256 for flowers)")
    p.add_argument("--budget", default=None,
                   help="training budget per method: time (90s, 10m, 1h; keyed on the hardware), steps (500steps), or "
                   "compute that means the same on every machine: epochs (20epochs), images (200kimages), FLOPs "
                   "(5PFLOP); or a preset: smoke (30 steps, a demo), short (5m), standard (15m) (default: standard)")
    p.add_argument("--seeds", default="3", help="number of seeds (3 -> 0,1,2) or a list (0,7,42) (default: 3: a "
                   "verdict needs each method's training variance, which one seed cannot measure)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--out", default="runs", help="results folder (default: ./runs)")
    p.add_argument("--metrics", default=None, help="comma list of metrics (default: all registered)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                   help="method option, e.g. -o pix2pix.gan_mode=lsgan or -o batch_size=8 (repeatable)")
    p.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE", help="dataset option (repeatable)")
    p.add_argument("--data-root", default=None, help="where datasets live (default: $COLORBENCH_DATA or the user cache)")
    p.add_argument("--weights-dir", default=None, help="folder of pretrained weight files (default: $COLORBENCH_WEIGHTS)")
    p.add_argument("--eval-batch-size", type=int, default=32, help="batch size for colorizing and scoring (default: 32)")
    p.add_argument("--test-draws", type=int, default=1, metavar="N",
                   help="for methods random at test time (dropout, noise): score N draws of the test split and record "
                   "the spread of each metric over them; the board ranks draw 0 (default: 1)")
    p.add_argument("--samples", type=int, default=8, help="sample colorizations kept per run (default: 8)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="training precision (autocast); metrics always run in fp32 (default: auto = bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--compile", nargs="?", const="max-autotune-no-cudagraphs", default=None, metavar="MODE",
                   help="torch.compile every method's networks (MODE: default, max-autotune-no-cudagraphs (the "
                   "default when given alone), reduce-overhead); compile time is recorded, not charged to the budget")
    p.add_argument("--force", action="store_true", help="run finished runs again, replacing their results (said in the log)")
    p.add_argument("--fresh", action="store_true", help="start interrupted runs over instead of resuming them")
    p.add_argument("--checkpoint-every", type=float, default=5.0, metavar="MINUTES",
                   help="minutes of training between resume checkpoints (default: 5)")
    p.add_argument("--tensorboard", action="store_true",
                   help="watch training live: write TensorBoard event files (losses per step; a grid of test samples "
                   "at each checkpoint and at the end) into each run's folder, tensorboard/; view them with "
                   "`tensorboard --logdir runs`; not part of the run identity; needs "
                   "pip install 'colorbench[tensorboard]'")
    p.add_argument("--launcher", default="local", choices=["local", "ray"],
                   help="who runs the grid: local (this process; --jobs N for N at once) or ray (a Ray task per run, "
                   "one GPU each; needs pip install 'colorbench[ray]') (default: local)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="--launcher local: runs at once on this machine, one process each, GPUs round-robin "
                   "(on the CPU: see --cpus-per-run) (default: 1)")
    p.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                   help="--launcher ray: the running cluster to use (default: start Ray on this machine, "
                   "one run per GPU)")
    p.add_argument("--cpus-per-run", type=int, default=None, metavar="N",
                   help="torch threads of each CPU run, and the CPUs a Ray task asks for (default: on the CPU this "
                   "process's threads, as a sequential run, whose numbers depend on them; with a GPU, 1)")
    p.add_argument("--gpus", type=int, default=1, metavar="N",
                   help="train each run on N GPUs of this machine with DistributedDataParallel (starts torchrun; "
                   "the same as torchrun --nproc-per-node N -m bench run ...); the budget counts GPU-seconds "
                   "(default: 1)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=cmd_run)
