"""Commands that look after the installation and the results: list, index, new-method, weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.cli.common import stdout_console


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


def cmd_index(args) -> int:
    from bench.store import index

    out = Path(args.runs)
    if args.rebuild:
        damaged: list = []
        count = index.rebuild(out, damaged)
        print(f"{out / 'runs.sqlite'}: rebuilt from {count} result files"
              + (f"; {len(damaged)} unreadable ones left out (`bench run` does their runs again)" if damaged else ""))
        for path, reason in damaged:
            print(f"  unreadable: {reason}")
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
        for entry in state["differs"]:
            said = "; ".join(f"{field}: {stored!r} in the index, {wanted!r} in the file"
                             for field, (stored, wanted) in entry["fields"].items())
            print(f"  differs from its result file: {entry['path']} ({said})")
        for entry in state["damaged"]:
            print(f"  unreadable result file: {entry['reason']}")
    repairable = state["missing"] or state["stale"] or state["differs"]
    if repairable and not args.json:
        print("the index is out of step: `bench index --rebuild` makes it again from the result files")
    if state["damaged"] and not args.json:
        print("unreadable result files count as not done: `bench run` does their runs again")
    return 1 if repairable or state["damaged"] else 0


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


def add_list_parser(sub) -> None:
    """``bench list``."""
    p = sub.add_parser("list", help="list methods, datasets and metrics with the plugin each came from",
                       description="Every registered method, dataset and metric (built-in and from installed plugins), "
                       "with its description and the plugin it came from; --json adds every option and its default.")
    p.add_argument("--json", action="store_true", help="machine-readable output (with every option and default)")
    p.set_defaults(func=cmd_list)


def add_index_parser(sub) -> None:
    """``bench index``."""
    p = sub.add_parser("index", help="check the SQLite run index against the result files, or rebuild it",
                       description="The result.json files are the record; runs.sqlite is a cache of them. Without "
                       "--rebuild, compare every row with its file (status, steps, metric values, every column) and "
                       "list rows missing, stale or different, and result files that cannot be read (exit 1 if any). "
                       "A damaged or foreign runs.sqlite is moved aside (runs.sqlite.damaged-<time>) and rebuilt, "
                       "with a warning.")
    p.add_argument("--runs", default="runs", help="runs folder (default: ./runs)")
    p.add_argument("--rebuild", action="store_true",
                   help="make the index again from the result files (built beside it, swapped in with one "
                   "transaction: runs written meanwhile are kept)")
    p.add_argument("--json", action="store_true", help="machine-readable output: every difference found")
    p.set_defaults(func=cmd_index)


def add_new_method_parser(sub) -> None:
    """``bench new-method``."""
    p = sub.add_parser("new-method", help="write a method plugin package to start from (installs and runs as it is)",
                       description="Write colorbench-NAME/: pyproject with the colorbench entry point, the method "
                       "module (the plugin contract, commented), a test and a README.")
    p.add_argument("name", help="the method's name, e.g. my-colorizer")
    p.add_argument("--dir", default=".", help="where to create the package folder (default: .)")
    p.add_argument("--description", default=None, help="one line shown by `bench list` and on the board")
    p.set_defaults(func=cmd_new_method)


def add_weights_parser(sub) -> None:
    """``bench weights``."""
    p = sub.add_parser("weights", help="list pretrained files: where each was found, or where to put it",
                       description="The pretrained files the suite can use (LPIPS's AlexNet trunk, the FID Inception, "
                       "the ImageNet ResNet18): for each, where it was found, or where to put it and where it comes "
                       "from, with its checksum. Metrics and methods whose file is missing are recorded as "
                       "unavailable, never run with a substitute.")
    p.add_argument("--weights-dir", default=None,
                   help="folder of pretrained weight files (default: $COLORBENCH_WEIGHTS)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_weights)
