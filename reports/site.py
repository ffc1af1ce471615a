"""Render runs folders into a static leaderboard site (first version)."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import jinja2

from bench import store
from bench.errors import BenchError


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bench.reports", "templates"),
        autoescape=True,  # every plugin/config/file-name string is escaped
        undefined=jinja2.StrictUndefined,
    )


def render_site(runs_dirs: list[Path], out: Path) -> Path:
    results = [r for d in runs_dirs for r in store.load_results(d)]
    if not results:
        raise BenchError(f"no result.json files under {', '.join(map(str, runs_dirs))}")
    out.mkdir(parents=True, exist_ok=True)
    by_dataset = defaultdict(list)
    for r in results:
        by_dataset[r["dataset"]].append(r)
    boards = []
    for dataset, rows in sorted(by_dataset.items()):
        metric_names = list(dict.fromkeys(n for r in rows for n in r.get("metric_details", {})))
        directions = {}
        for r in rows:
            for n, d in r.get("metric_details", {}).items():
                directions[n] = d.get("higher_is_better", True)
        ok = [r for r in rows if r["status"] == "ok"]
        best = {}
        for n in metric_names:
            values = [r["metrics"].get(n) for r in ok if r["metrics"].get(n) is not None]
            if values:
                best[n] = max(values) if directions[n] else min(values)
        grid = []
        for r in sorted(ok, key=lambda r: r["method"]):
            images = []
            for s in r.get("samples", []):
                target = out / "img" / store.safe_name(dataset) / store.safe_name(r["method"]) / f"seed{r['seed']}"
                target.mkdir(parents=True, exist_ok=True)
                copied = {}
                for kind in ("gray", "pred", "truth"):
                    src = Path(r["_dir"]) / s[kind]
                    if src.is_file():
                        shutil.copyfile(src, target / src.name)
                        copied[kind] = str((target / src.name).relative_to(out))
                images.append(copied)
            grid.append({"method": r["method"], "seed": r["seed"], "images": images})
        boards.append({
            "dataset": dataset, "rows": sorted(rows, key=lambda r: (r["status"] != "ok", r["method"], r["seed"])),
            "metrics": metric_names, "directions": directions, "best": best, "grid": grid,
            "budget": rows[0]["budget"], "size": rows[0]["size"],
        })
    html = _env().get_template("index.html").render(boards=boards)
    (out / "index.html").write_text(html)
    return out
