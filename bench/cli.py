"""The ``bench`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import __version__
from bench.errors import BenchError

EXAMPLES = """\
examples:
  bench run --methods all --dataset sample --budget smoke     # offline CPU demo
  bench run --methods all --dataset flowers                    # the real benchmark (15 GPU-minutes a method)
  bench run --methods baseline,pix2pix --dataset flowers --size 64 --budget 500steps --seeds 3
  bench report --runs runs --out site                           # HTML leaderboard
  bench score --pred my_outputs/ --target ground_truth/ --json
  bench colorize --checkpoint runs/flowers/pix2pix/seed0/checkpoint.pt old_photo.jpg --out colorized/
  bench turing --runs runs --out study --images 20 --time-limit 1  # blind Turing test; then: bench turing score
"""


def _split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_assignments(items: list[str], flag: str) -> dict:
    """KEY=VALUE pairs (values stay strings; the plugin's Options convert them)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def parse_seeds(text: str) -> list[int]:
    try:
        if "," in text:
            seeds = [int(s) for s in _split_list(text)]
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


def stdout_console():
    """Rich console for tables on stdout; piped or captured output is not squeezed to 80 columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=250)


# -- commands ----------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from bench import registry

    rows = {
        kind + "s": [
            {
                "name": e.name,
                "plugin": e.plugin,
                "description": e.description,
                **({"options": e.cls.Options.describe()} if hasattr(e.cls, "Options") else {}),
                **({"higher_is_better": e.cls.higher_is_better} if kind == "metric" else {}),
            }
            for e in registry.registries()[kind].entries()
        ]
        for kind in registry.KINDS
    }
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from rich.table import Table

    console = stdout_console()
    for kind, entries in rows.items():
        table = Table(title=kind, title_justify="left", show_lines=False)
        for column in ("name", "plugin", "description"):
            table.add_column(column, overflow="fold")
        for e in entries:
            name = e["name"] + (" ↑" if e.get("higher_is_better") is True else " ↓" if e.get("higher_is_better") is False else "")
            table.add_row(name, e["plugin"], e["description"])
        console.print(table)
    return 0


def cmd_run(args) -> int:
    from bench import registry
    from bench.engine.budget import DEFAULT, Budget
    from bench.environment import resolve_device
    from bench.runner import RunConfig, run_benchmark

    methods = registry.list_methods() if args.methods == "all" else _split_list(args.methods)
    if not methods:
        raise BenchError("--methods: name at least one method, or all")
    dataset, _, path = args.dataset.partition(":")
    dataset_options = parse_assignments(args.dataset_option, "--dataset-option")
    if path:
        dataset_options.setdefault("path", path)
    if args.size is not None and args.size < 16:
        raise BenchError(f"--size {args.size}: at least 16 pixels")
    if args.launcher == "ray":  # the cluster's GPUs, which this machine may not have
        from bench.launch.ray import cluster_device

        device, device_label = cluster_device(args.device, args.ray_address)
    else:
        device, device_label = resolve_device(args.device), None
    config = RunConfig(
        methods=methods,
        dataset=dataset,
        budget=Budget.parse(args.budget or DEFAULT),
        device=device,
        device_name=device_label,
        out=Path(args.out),
        size=args.size,
        seeds=parse_seeds(args.seeds),
        metrics=_split_list(args.metrics) if args.metrics else None,
        method_options=method_options(methods, args.option),
        dataset_options=dataset_options,
        data_root=args.data_root,
        weights_dir=args.weights_dir,
        eval_batch_size=args.eval_batch_size,
        samples=args.samples,
        precision=args.precision,
        force=args.force,
        fresh=args.fresh,
        checkpoint_every=args.checkpoint_every * 60,
        compile_mode=args.compile,
        launcher=args.launcher,
        jobs=args.jobs,
        ray_address=args.ray_address,
        cpus_per_run=args.cpus_per_run,
    )
    results = run_benchmark(config)
    for r in results:
        r["action"] = r.pop("_action")
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k not in ("per_image", "history")} for r in results], indent=2))
    else:
        print_results(results)
    return 0 if any(r["status"] == "ok" for r in results) else 1


def print_results(results: list[dict]) -> None:
    """A table per run; with several seeds, also each method's across-seed mean ± std."""
    from rich.table import Table

    from bench.stats import aggregate_seeds

    def fmt(value):
        return "—" if value is None else f"{value:.4g}"

    metric_names = list(dict.fromkeys(n for r in results for n in r.get("metrics", {})))
    table = Table(title="results", title_justify="left")
    for column in ["method", "seed", "status", "this time", "steps", "train img/s", *metric_names]:
        table.add_column(column)
    for r in results:
        speed = r.get("timings", {}).get("train_images_per_s")
        table.add_row(r["method"], str(r["seed"]), r["status"], r.get("action", ""), str(r["budget"].get("steps", 0)),
                      fmt(speed), *(fmt(r["metrics"].get(n)) for n in metric_names))
    console = stdout_console()
    console.print(table)
    methods = list(dict.fromkeys(r["method"] for r in results))
    if len(results) > len(methods):
        summary = Table(title="across seeds: mean ± std", title_justify="left")
        for column in ["method", "seeds ok", *metric_names]:
            summary.add_column(column)
        for method in methods:
            runs = [r for r in results if r["method"] == method and r["status"] == "ok"]
            cells = []
            for name in metric_names:
                agg = aggregate_seeds([r["metrics"].get(name) for r in runs])
                cells.append(fmt(agg["mean"]) + (f" ± {agg['std']:.2g}" if agg["std"] is not None else ""))
            summary.add_row(method, str(len(runs)), *cells)
        console.print(summary)
    for r in results:
        if r["status"] != "ok":
            print(f"{r['method']} (seed {r['seed']}) {r['status']}: {r['error']}")


def cmd_score(args) -> int:
    from bench.environment import resolve_device
    from bench.score import score_folders

    names = _split_list(args.metrics) if args.metrics else None
    if names:
        from bench import registry

        for n in names:
            registry.metrics().get(n)
    result = score_folders(Path(args.pred), Path(args.target), names, device=resolve_device(args.device),
                           weights_dir=args.weights_dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['n_images']} image pairs")
    for name, detail in result["metric_details"].items():
        print(f"  {name:<20} {describe_metric(detail)}")
    speeds = [d["pass_images_per_s"] for d in result["metric_details"].values() if d.get("pass_images_per_s")]
    if speeds:
        print(f"  ({speeds[0]:.1f} images/s for the whole pass)")
    return 0


def describe_metric(detail: dict) -> str:
    """One line for a metric result: value, CI and the set-level extras (std, N, warnings)."""
    if detail.get("value") is None:
        return f"{detail['status']}: {detail.get('reason', '')}".splitlines()[0]
    parts = [f"{detail['value']:.4f}"]
    if detail.get("ci95"):
        parts.append(f"95% CI {detail['ci95'][0]:.4f}–{detail['ci95'][1]:.4f}")
    if detail.get("std") is not None:
        parts.append(f"std {detail['std']:.4g}" + (f" over {detail['subsets']} subsets of {detail['subset_size']}" if "subsets" in detail else ""))
    if detail.get("signed_gap") is not None:
        parts.append(f"signed gap {detail['signed_gap']:+.4f}")
    if "n_reference" in detail:
        parts.append(f"N={detail['n']} vs {detail['n_reference']}")
    if detail.get("settings"):
        parts.append(detail["settings"])
    text = ", ".join(parts)
    return text + (f"  ⚠ {detail['warning']}" if detail.get("warning") else "")


def cmd_report(args) -> int:
    from bench.reports import render_site

    verdicts = _split_list(args.verdicts) if args.verdicts is not None else []
    if args.verdicts is not None and not verdicts:
        raise BenchError(f"--verdicts {args.verdicts!r}: give one or more metric names, e.g. --verdicts psnr,ssim")
    if args.rank_by is not None and not args.rank_by.strip():
        raise BenchError("--rank-by '': give a metric name, e.g. --rank-by lpips")
    site = render_site([Path(p) for p in args.runs], Path(args.out),
                       rank_by=args.rank_by.strip() if args.rank_by else None, verdicts=verdicts)
    print(site / "index.html")
    return 0


def cmd_colorize(args) -> int:
    from bench.colorize import colorize_all, plan, summary, summary_line
    from bench.engine.checkpoint import load_checkpoint
    from bench.environment import resolve_device
    from bench.progress import console, progress_bar

    if args.max_pixels < 1:
        raise BenchError(f"--max-pixels {args.max_pixels}: must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; expected a folder for the colorized PNGs")
    method, meta = load_checkpoint(Path(args.checkpoint), resolve_device(args.device))
    if args.size is not None and args.size != meta["size"]:
        raise BenchError(f"--size {args.size}: this checkpoint was trained at {meta['size']} px and its network only "
                         "runs at that size (outputs keep each photo's own size anyway); leave --size out")
    entries = plan(args.images, out, args.glob)
    with progress_bar(f"colorize ({meta['method']})", total=len(entries)) as advance:
        def on_result(result):
            if result.reason:  # failed and skipped inputs are always reported, even with --quiet
                console.print(f"{result.status}: {result.reason}", markup=False, highlight=False, soft_wrap=True)
            advance()

        results = colorize_all(method, entries, overwrite=args.overwrite, max_pixels=args.max_pixels,
                               on_result=on_result)
    console.print(summary_line(results), markup=False, highlight=False)
    written = [r.output for r in results if r.status == "colorized"]
    if args.json:
        print(json.dumps({"method": meta["method"], "checkpoint": str(args.checkpoint), "size": meta["size"],
                          "outputs": written, "summary": summary(results),
                          "files": [r.to_dict() for r in results]}, indent=2))
    elif written:
        print("\n".join(written))
    return 1 if any(r.status == "failed" for r in results) else 0


def cmd_index(args) -> int:
    from bench.store import index

    out = Path(args.runs)
    if args.rebuild:
        count = index.rebuild(out)
        print(f"{out / 'runs.sqlite'}: rebuilt from {count} result files")
        return 0
    state = index.check(out)
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        print(f"{state['files']} result files, {state['rows']} index rows")
        for key in state["missing"]:
            print(f"  not indexed: {key}")
        for key in state["stale"]:
            print(f"  indexed but no result file: {key}")
    in_step = not state["missing"] and not state["stale"]
    if not in_step and not args.json:
        print("the index is out of step: `bench index --rebuild` makes it again from the result files")
    return 0 if in_step else 1


def cmd_new_method(args) -> int:
    from bench.scaffold import new_method

    root = new_method(args.name, Path(args.dir), args.description)
    print(root)
    print(f"next: pip install -e {root} && bench run --methods {args.name},baseline --dataset sample --budget smoke",
          file=sys.stderr)
    return 0


def cmd_weights(args) -> int:
    from bench.weights import WeightStore

    rows = WeightStore(args.weights_dir, allow_download=False).report()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        where = f"found in {row['source']}: {row['path']}" if row["status"] == "found" else f"MISSING — put {row['file']} at {row['put_at']}"
        print(f"{row['key']:<20} {row['file']:<40} {where}")
        print(f"{'':<20} needed by: {', '.join(row['needed_by'])}; sha256 {row['sha256']}; {row['url']}")
        for problem in row["problems"]:
            print(f"{'':<20} {problem}")
    return 0


def cmd_turing(args) -> int:
    """``bench turing --runs DIR --out STUDY`` builds a study; ``bench turing score STUDY VOTES…`` scores it."""
    if args.turing_command == "score":
        from bench.reports.turing.score import score_study
        from bench.reports.turing.tables import print_scores

        scores = score_study(Path(args.study), [Path(p) for p in args.votes], min_catch=args.min_catch)
        if args.report:
            from bench.reports import render_site

            runs_dirs = args.report_runs or scores["runs_dirs"]
            if not runs_dirs:
                raise BenchError("--report: design.json records no runs folder; name them with --runs")
            rank_by = args.rank_by.strip() if args.rank_by and args.rank_by.strip() else None
            site = render_site([Path(d) for d in runs_dirs], Path(args.report), rank_by=rank_by, turing=scores)
            scores["report"] = str(site / "index.html")
        if args.json:
            print(json.dumps(scores, indent=2))
        else:
            print_scores(scores, stdout_console())
            if args.report:
                print(scores["report"])
        return 0
    from bench.reports.turing.study import build_study
    from bench.reports.turing.tables import study_summary

    study = build_study([Path(d) for d in args.runs], Path(args.out),
                        methods=_split_list(args.methods) if args.methods else None, images=args.images,
                        seed=args.seed, catch=args.catch, time_limit=args.time_limit, blocks=args.blocks,
                        title=args.title)
    if args.json:
        print(json.dumps({k: study[k] for k in ("study_id", "title", "seed", "blocks", "catch_per_block",
                                                "time_limit_s", "arms", "images")}
                         | {"trials": len(study["trials"]), "site": str(Path(args.out) / "site" / "index.html"),
                            "design": str(Path(args.out) / "design.json")}, indent=2))
    else:
        print(study_summary(study, Path(args.out)))
    return 0


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="colorbench: train colorization methods under equal budgets, score them, publish leaderboards.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"colorbench {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list methods, datasets and metrics with the plugin each came from")
    p.add_argument("--json", action="store_true", help="machine-readable output (with every option and default)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "run", help="train and score methods on a dataset under one budget",
        description="Train every chosen method (x seed) under the same budget, colorize the test split, score it, "
        "and write <out>/<dataset>/<method>/<size>px-<budget>-<config hash>/seed<k>/result.json plus the SQLite "
        "index <out>/runs.sqlite. A run is identified by dataset (+options), size, budget, method (+options), "
        "precision, hardware and seed: a finished run is skipped when asked again (--force replaces it), and an "
        "interrupted one (kill, Ctrl-C, SIGTERM) resumes from its last checkpoint.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--methods", default="all", help="'all' or a comma list, e.g. baseline,pix2pix (default: all)")
    p.add_argument("--dataset", default="sample",
                   help="dataset name (see `bench list`); 'folder:PATH' for your own images (default: sample)")
    p.add_argument("--size", type=int, default=None, help="image size in pixels (default: the dataset's, e.g. 256 for flowers)")
    p.add_argument("--budget", default=None,
                   help="training budget per method: 90s, 10m, 1h, 500steps, or a preset: smoke (30 steps, a demo), "
                   "short (5m), standard (15m) (default: standard)")
    p.add_argument("--seeds", default="1", help="number of seeds (3 -> 0,1,2) or a list (0,7,42) (default: 1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--out", default="runs", help="results folder (default: ./runs)")
    p.add_argument("--metrics", default=None, help="comma list of metrics (default: all registered)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                   help="method option, e.g. -o pix2pix.gan_mode=lsgan or -o batch_size=8 (repeatable)")
    p.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE", help="dataset option (repeatable)")
    p.add_argument("--data-root", default=None, help="where datasets live (default: $COLORBENCH_DATA or the user cache)")
    p.add_argument("--weights-dir", default=None, help="folder of pretrained weight files (default: $COLORBENCH_WEIGHTS)")
    p.add_argument("--eval-batch-size", type=int, default=32, help="batch size for colorizing and scoring (default: 32)")
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
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score a folder of colorized images against ground truth",
                       description="Match images by file name (stem) and compute the suite's metrics.")
    p.add_argument("--pred", required=True, help="folder of colorized images")
    p.add_argument("--target", required=True, help="folder of ground-truth images (same file names)")
    p.add_argument("--metrics", default=None, help="comma list (default: all registered)")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--json", action="store_true", help="machine-readable output, with per-image values")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("report", help="render the HTML leaderboard site from runs folders")
    p.add_argument("--runs", nargs="+", default=["runs"], help="one or more runs folders to merge (default: runs)")
    p.add_argument("--out", default="site", help="site folder (default: ./site)")
    p.add_argument("--rank-by", default=None, metavar="METRIC",
                   help="the metric every board is ranked by; it needs a direction (default: lpips; a board "
                   "without its values falls back to the first metric with one, and says so)")
    p.add_argument("--verdicts", default=None, metavar="METRIC[,METRIC]",
                   help="also show pairwise verdicts (paired bootstrap) on these metrics, e.g. psnr,colourfulness")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("colorize", help="colorize your own photos with a trained checkpoint",
                       description="Run the network at its trained size on L, upsample ab and recombine with "
                       "the full-resolution L: outputs keep each photo's own size. Every input gives an output or a "
                       "one-line reason and the others go on; the exit status is 1 when any input failed.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by `bench run`")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="image files (colour or grayscale, any mode Pillow reads) and folders (searched recursively)")
    p.add_argument("--out", required=True, help="output folder: one PNG per input named with its extension "
                   "(photo.jpg -> photo.jpg.png), sub-folders of folder inputs kept")
    p.add_argument("--glob", default=None, help="files to take from folders, e.g. '*.jpg' (case-insensitive; "
                   "default: every image extension Pillow reads)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (default: keep them and report those inputs as skipped)")
    p.add_argument("--max-pixels", type=int, default=200_000_000,
                   help="refuse photos with more pixels than this (default: 200000000)")
    p.add_argument("--size", type=int, default=None,
                   help="optional check: the checkpoint's trained size, the only size its network runs at")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print outputs, a summary and each file's status as JSON")
    p.set_defaults(func=cmd_colorize)

    p = sub.add_parser("index", help="check the SQLite run index against the result files, or rebuild it",
                       description="The result.json files are the record; runs.sqlite indexes them. Without "
                       "--rebuild, report rows missing or stale (exit 1 if any).")
    p.add_argument("--runs", default="runs", help="runs folder (default: ./runs)")
    p.add_argument("--rebuild", action="store_true", help="make the index again from the result files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("new-method", help="write a method plugin package to start from (installs and runs as it is)",
                       description="Write colorbench-NAME/: pyproject with the colorbench entry point, the method "
                       "module (the plugin contract, commented), a test and a README.")
    p.add_argument("name", help="the method's name, e.g. my-colorizer")
    p.add_argument("--dir", default=".", help="where to create the package folder (default: .)")
    p.add_argument("--description", default=None, help="one line shown by `bench list` and on the board")
    p.set_defaults(func=cmd_new_method)

    p = sub.add_parser("weights", help="list pretrained files: where each was found, or where to put it")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser(
        "turing", help="blind colorization Turing test: build a study site from runs, score raters' votes",
        description="Build a static study site (works from file:// and on any static host): each trial shows one "
        "test image twice, the real photo and one method's colorization, left/right at random, and asks which one "
        "is real. Trials are a balanced, seeded design over methods and images, with catch trials (real vs gray). "
        "The page never shows method names or the real side; STUDY/design.json (the answer key, never published) "
        "maps the votes back. Raters export their answers as one JSON file each; `bench turing score STUDY "
        "VOTES...` computes every method's fooling rate.",
        epilog="examples:\n"
        "  bench run --methods baseline,pix2pix --dataset flowers --samples 20   # keep 20 test images as samples\n"
        "  bench turing --runs runs --out study --images 20 --time-limit 1      # publish study/site/\n"
        "  bench turing score study votes/*.json                                 # fooling rates\n"
        "  bench turing score study votes/*.json --report site                   # the leaderboard, with them\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", nargs="+", default=["runs"], help="runs folders with the methods to test (default: runs)")
    p.add_argument("--out", default="study", help="a new folder for the study (default: ./study)")
    p.add_argument("--methods", default=None,
                   help="comma list of methods (method names, or row labels such as 'pix2pix (gan_mode=lsgan)') "
                   "(default: every finished method run)")
    p.add_argument("--images", type=int, default=None,
                   help="test images to use (default: every image with samples in all chosen runs; `bench run "
                   "--samples N` keeps N)")
    p.add_argument("--seed", type=int, default=0, help="seed of the design: images, pairs, sides, order (default: 0)")
    p.add_argument("--catch", type=int, default=5, help="catch trials (real vs gray) per block (default: 5)")
    p.add_argument("--time-limit", type=float, default=0.0, metavar="SECONDS",
                   help="seconds the pictures are shown per trial, then hidden until the rater chooses; Zhang et al. "
                   "used about 1 (default: 0 = no limit)")
    p.add_argument("--blocks", type=int, default=1,
                   help="split the trials into B blocks, one per rater (B divides the number of methods; B = the "
                   "number of methods shows each rater each image once) (default: 1)")
    p.add_argument("--title", default=None, help="the question on the page (default: 'Which one is the real photo?')")
    p.add_argument("--json", action="store_true", help="print the study's design summary as JSON")
    p.set_defaults(func=cmd_turing, turing_command=None)
    turing_sub = p.add_subparsers(dest="turing_command", metavar="[score ...]")
    s = turing_sub.add_parser("score", help="fooling rate per method from the raters' exported votes",
                              description="Check every votes file against the study's design.json, drop raters who "
                              "fail the catch trials, and compute each method's fooling rate (share of its trials "
                              "where the colorization was picked as real; 50 % = indistinguishable) with a Wilson "
                              "95 % interval, pooled and per rater.")
    s.add_argument("study", help="the study folder (or its design.json)")
    s.add_argument("votes", nargs="+", help="votes files (JSON) exported by the study page, one per rater")
    s.add_argument("--min-catch", type=float, default=0.8,
                   help="share of catch trials a rater must get right to be kept (default: 0.8)")
    s.add_argument("--report", default=None, metavar="SITE",
                   help="also render the leaderboard site with a fooling-rate column (as `bench report` does)")
    s.add_argument("--runs", dest="report_runs", nargs="+", default=None,
                   help="runs folders for --report (default: those the study was built from)")
    s.add_argument("--rank-by", default=None, metavar="METRIC", help="ranking metric for --report (default: lpips)")
    s.add_argument("--json", action="store_true", help="machine-readable output, with every rater")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bench.progress import console, set_quiet

    set_quiet(args.quiet)
    try:
        return args.func(args)
    except BenchError as error:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
