"""``bench reproduce``: run published results again on this machine and say whether they hold."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.cli.common import stdout_console


def cmd_reproduce(args) -> int:
    from bench.environment import resolve_device
    from bench.reproduce import reproduce

    reproductions = reproduce(Path(args.path), out=Path(args.out), device=resolve_device(args.device),
                              data_root=args.data_root, weights_dir=args.weights_dir)
    if args.json:
        print(json.dumps([r.to_dict() for r in reproductions], indent=2))
    else:
        print_reproductions(reproductions)
    return 0 if all(r.ok for r in reproductions) else 1


def print_reproductions(reproductions) -> None:
    from rich.table import Table

    table = Table(title="bench reproduce: published vs reproduced")
    for name in ("run", "metric", "published", "reproduced", "published 95 % CI", "verdict"):
        table.add_column(name, overflow="fold")
    for r in reproductions:
        run = f"{r.published.identity.method} seed {r.published.identity.seed}"
        if r.status != "ok":
            table.add_row(run, "—", "", "", "", f"differs: the run {r.status} ({r.error})")
            continue
        for m in r.metrics:
            ci = m["ci95"]
            table.add_row(run, m["metric"], f"{m['published']:.6g}" if m["published"] is not None else "—",
                          f"{m['reproduced']:.6g}" if m["reproduced"] is not None else "—",
                          f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci and None not in ci else "—",
                          m["verdict"] + (f": {m['note']}" if m.get("note") else ""))
            run = ""
    console = stdout_console()
    console.print(table)
    for r in reproductions:
        if r.environment:
            console.print(f"{r.published.identity.method} seed {r.published.identity.seed}: environment differs: "
                          + "; ".join(r.environment), highlight=False)
    bad = sum(not r.ok for r in reproductions)
    console.print(f"{len(reproductions) - bad} of {len(reproductions)} runs reproduced (identical or within CI)",
                  highlight=False)


def add_reproduce_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="run published results again from their recorded config and seed, and compare",
        description="Run each published result's identity again on this machine (its recorded dataset, options, "
        "size, budget, method, options, precision and seed) into a separate folder, and print per run and metric "
        "the published value, the reproduced one and the verdict: identical (bit for bit), within CI (inside the "
        "published 95 %% interval) or differs, with the environment differences that may explain it. Exit status "
        "0 only when every run is identical or within its CI.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("path", help="a result.json, a run folder, or a runs folder (every finished method result in it)")
    p.add_argument("--out", default="reproduced", help="where the runs are made again (never the published folder)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--data-root", type=Path, default=None, help="where the datasets are (as for bench run)")
    p.add_argument("--weights-dir", type=Path, default=None, help="where pretrained weights are (as for bench run)")
    p.add_argument("--json", action="store_true", help="print every comparison as JSON")
    p.set_defaults(func=cmd_reproduce)
