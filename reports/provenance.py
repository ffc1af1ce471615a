"""What a set of runs was produced with, as (label, text) pairs for a page's provenance block."""

from __future__ import annotations

from bench.reports.cells import budget_text
from bench.reports.runs import Run, as_dict, as_text


def _distinct(values) -> str:
    values = sorted({v for v in values if v})
    return "; ".join(values) if values else "not recorded"


def _software(env: dict) -> str:
    parts = [f"torch {env.get('torch') or '?'}"]
    parts.append(f"CUDA {env['cuda']}" if env.get("cuda") else "no CUDA build")
    if env.get("cudnn"):
        parts.append(f"cuDNN {env['cudnn']}")
    return ", ".join(parts)


def _dataset(run: Run) -> str:
    data = run.section("data")
    info = as_dict(data.get("info"))
    text = run.dataset
    if info.get("split"):
        text += f" — split: {as_text(info['split'])}"
    if info.get("source"):
        text += f" — source: {as_text(info['source'])}"
    counts = [f"{data[k]} {k.split('_')[0]}" for k in ("train_images", "test_images") if isinstance(data.get(k), int)]
    if counts:
        text += f" — {' / '.join(counts)} images"
    return text


def provenance(runs: list[Run]) -> list[tuple[str, str]]:
    envs = [r.section("environment") for r in runs]
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    dates = sorted(d for d in (as_text(r.raw.get("created")) for r in runs) if d)
    return [
        ("colorbench", _distinct(
            f"{as_text(e.get('colorbench')) or '?'} (git {as_text(e.get('git_commit')) or 'unknown'})" for e in envs if e
        )),
        ("software", _distinct(_software(e) for e in envs if e)),
        ("device", _distinct(as_text(e.get("device")) for e in envs)),
        ("dataset", _distinct(_dataset(r) for r in runs)),
        ("size", _distinct(f"{r.size}px" for r in runs if r.size is not None)),
        ("budget", _distinct(budget_text(r.budget) for r in runs)),
        ("seeds", ", ".join(map(str, seeds)) if seeds else "not recorded"),
        ("run dates", f"{dates[0]} – {dates[-1]}" if len(dates) > 1 and dates[0] != dates[-1] else (dates[0] if dates else "not recorded")),
        ("results from", _distinct(r.source for r in runs)),
    ]
