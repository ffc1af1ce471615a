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
  bench run --methods all --dataset flowers --budget 10m       # the real benchmark
  bench run --methods baseline,pix2pix --dataset flowers --size 64 --budget 500steps --seeds 3
  bench report --runs runs --out site                           # HTML leaderboard
  bench score --pred my_outputs/ --target ground_truth/ --json
  bench colorize --checkpoint runs/flowers/pix2pix/seed0/checkpoint.pt old_photo.jpg --out colorized/
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
    from bench.engine.budget import Budget
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
    config = RunConfig(
        methods=methods,
        dataset=dataset,
        budget=Budget.parse(args.budget),
        device=resolve_device(args.device),
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
    )
    results = run_benchmark(config)
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
    for column in ["method", "seed", "status", "steps", "train img/s", *metric_names]:
        table.add_column(column)
    for r in results:
        speed = r.get("timings", {}).get("train_images_per_s")
        table.add_row(r["method"], str(r["seed"]), r["status"], str(r["budget"].get("steps", 0)),
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

    site = render_site([Path(p) for p in args.runs], Path(args.out))
    print(site / "index.html")
    return 0


def cmd_colorize(args) -> int:
    from PIL import Image

    from bench.engine.checkpoint import load_checkpoint
    from bench.environment import resolve_device
    from bench.inference import colorize_photo, open_photo
    from bench.progress import progress_bar

    method, meta = load_checkpoint(Path(args.checkpoint), resolve_device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = [(Path(p), open_photo(Path(p))) for p in args.images]  # every input checked before work starts
    written = []
    with progress_bar(f"colorize ({meta['method']})", total=len(photos)) as advance:
        for path, rgb in photos:
            target = out / f"{path.stem}.png"
            Image.fromarray(colorize_photo(method, rgb)).save(target)
            written.append(str(target))
            advance()
    if args.json:
        print(json.dumps({"method": meta["method"], "checkpoint": args.checkpoint, "outputs": written}, indent=2))
    else:
        print("\n".join(written))
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
        "and write <out>/<dataset>/<method>/seed<k>/result.json plus the SQLite index <out>/runs.sqlite.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--methods", default="all", help="'all' or a comma list, e.g. baseline,pix2pix (default: all)")
    p.add_argument("--dataset", default="sample",
                   help="dataset name (see `bench list`); 'folder:PATH' for your own images (default: sample)")
    p.add_argument("--size", type=int, default=None, help="image size in pixels (default: the dataset's, e.g. 256 for flowers)")
    p.add_argument("--budget", default="smoke",
                   help="training budget per method: 90s, 10m, 1h, 500steps, or smoke|short|standard (default: smoke)")
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
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("colorize", help="colorize your own photos with a trained checkpoint",
                       description="Run the network at its trained size on L, upsample ab and recombine with "
                       "the full-resolution L: outputs keep each photo's own size.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by `bench run`")
    p.add_argument("images", nargs="+", help="image files (colour or grayscale)")
    p.add_argument("--out", required=True, help="output folder (PNG files named after the inputs)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_colorize)

    p = sub.add_parser("weights", help="list pretrained files: where each was found, or where to put it")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_weights)
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
