"""What ``bench run`` prints when it ends: one table that fits 100 columns, and what was missing, in words.

A row per method (and budget, on a curve): its full name (wrapped, never cut), how many of its seeds are
``ok``, what happened this time (``started`` / ``resumed`` / ``skipped`` ...), the ranking metric with its
95 % interval over seeds and test images (``bench.stats.mean_interval``; one seed has none) and the next
two metrics. Everything else is in ``--json`` and the report. Metrics that could not run are said once,
grouped by reason, with the command that fixes them; when the ranking metric is one of them, the line
says which metric is shown first instead.
"""

from __future__ import annotations

from rich import box
from rich.table import Table

from bench import registry
from bench.metric import DEFAULT_RANK_BY, glance_metrics
from bench.stats import mean_interval
from bench.store.results import status_text

WIDTH = 100


def _has_values(results: list[dict], name: str) -> bool:
    return any(r.get("metrics", {}).get(name) is not None for r in results)


def shown_metrics(results: list[dict]) -> tuple[list[str], str | None]:
    """(metrics to show, ranking one first; a note when the ranking metric is not the default, else None)."""
    directional = [n for n in registry.list_metrics() if registry.metrics().get(n).cls.higher_is_better is not None]
    present = [n for n in directional if _has_values(results, n)]
    first = DEFAULT_RANK_BY if DEFAULT_RANK_BY in present else next(iter(present), None)
    note = None
    if first != DEFAULT_RANK_BY and first is not None:
        note = f"{DEFAULT_RANK_BY} has no values here, so {first} is shown first (and ranks the report's boards)"
    return glance_metrics(first, present, directional), note


def unavailable_lines(results: list[dict]) -> list[str]:
    """One line per reason a metric could not run, naming the metrics it cost."""
    by_reason: dict[str, list[str]] = {}
    for result in results:
        for name, detail in (result.get("metric_details") or {}).items():
            if detail.get("status") == "unavailable":
                reason = str(detail.get("reason") or "unavailable").split(" (put ")[0]
                if name not in by_reason.setdefault(reason, []):
                    by_reason[reason].append(name)
    return [f"not scored: {', '.join(names)}: {reason}; `bench weights` says where each file goes"
            for reason, names in by_reason.items()]


def _happened(runs: list[dict]) -> str:
    """What this command did to a row's runs, e.g. ``2 started, 1 skipped``."""
    counts: dict[str, int] = {}
    for run in runs:
        word = str(run.get("action", "")).split(" ")[0] or "?"
        counts[word] = counts.get(word, 0) + 1
    return ", ".join(f"{n} {word}" if len(runs) > 1 else word for word, n in counts.items())


def _cell(runs: list[dict], name: str, with_interval: bool) -> str:
    values = [r["metrics"].get(name) for r in runs if r.get("metrics", {}).get(name) is not None]
    if not values:
        return "—"
    mean = sum(values) / len(values)
    if not with_interval:
        return f"{mean:.4g}"
    per_image = [r.get("per_image", {}).get(name) for r in runs]
    interval = mean_interval(per_image) if all(per_image) and len(per_image) > 1 else None
    if interval is None:
        return f"{mean:.4g}" + (" (1 seed)" if len(values) == 1 else "")
    low, high = interval["ci95"]
    return f"{mean:.4g} [{low:.4g}, {high:.4g}]"


def results_table(results: list[dict], width: int = WIDTH) -> tuple[Table, list[str]]:
    """The closing table (at most ``WIDTH`` columns, or ``width`` on a narrower terminal) and the lines under it."""
    metrics, note = shown_metrics(results)
    curve = len({r["budget"].get("label") for r in results}) > 1
    rows: dict[tuple, list[dict]] = {}
    for result in results:
        rows.setdefault((result["method"], result["budget"].get("label") if curve else None), []).append(result)
    table = Table(title="results (every metric: --json, bench report)", title_justify="left", box=box.SIMPLE_HEAD,
                  width=min(width, WIDTH), pad_edge=False)
    table.add_column("method", overflow="fold", ratio=3)
    if curve:
        table.add_column("budget", overflow="fold", ratio=1)
    table.add_column("ok", justify="right", no_wrap=True)
    table.add_column("this time", overflow="fold", ratio=2)
    for k, name in enumerate(metrics):
        arrow = {True: " ↑", False: " ↓"}.get(registry.metrics().get(name).cls.higher_is_better, "")
        header = name + arrow + (" [95 %]" if k == 0 else "")
        table.add_column(header, justify="right", overflow="fold", min_width=len(header) if k else 24)
    for (method, budget), runs in rows.items():
        ok = [r for r in runs if r["status"] == "ok"]
        table.add_row(method, *([str(budget)] if curve else []), f"{len(ok)}/{len(runs)}", _happened(runs),
                      *(_cell(ok, name, k == 0) for k, name in enumerate(metrics)))
    lines = ([note] if note else []) + unavailable_lines(results)
    lines += [f"{r['method']} (seed {r['seed']}) {status_text(r)}" for r in results if r["status"] != "ok"]
    return table, lines
