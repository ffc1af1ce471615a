"""``bench reproduce``: run published results again from their recorded config and seed, and compare.

Each result's identity (dataset, options, size, budget, method, options, precision, seed) is run again on
this machine, into a separate output folder, through the same ``run_benchmark`` as ``bench run``. Per
run and metric the verdict is

* ``identical``: the same number, bit for bit (as stored in JSON);
* ``within CI``: inside the published 95 % interval;
* ``differs``: outside it (or no interval to judge by).

The environment differences that may explain a difference are listed: package versions, device,
precision, CPU threads. A CPU run reuses the published run's thread count, which is what makes CPU
sums (and so the numbers) the same.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.engine.budget import Budget
from bench.errors import BenchError
from bench.store import results
from bench.store.identity import REFERENCE_FOLDER, RunIdentity

IDENTICAL, WITHIN_CI, DIFFERS = "identical", "within CI", "differs"


@dataclass
class Published:
    path: Path
    result: dict
    identity: RunIdentity


@dataclass
class Reproduction:
    published: Published
    status: str  # the reproduced run's status
    error: str | None = None
    metrics: list[dict] = field(default_factory=list)  # {metric, published, reproduced, ci95, verdict}
    environment: list[str] = field(default_factory=list)  # differences that may explain it

    @property
    def ok(self) -> bool:
        return self.status == "ok" and all(m["verdict"] in (IDENTICAL, WITHIN_CI) for m in self.metrics)

    def to_dict(self) -> dict:
        result = self.published.result
        return {"result": str(self.published.path), "method": result.get("method"), "seed": result.get("seed"),
                "status": self.status, "error": self.error, "metrics": self.metrics,
                "environment_differences": self.environment, "ok": self.ok}


def find_published(path: Path) -> list[Published]:
    """The finished method results at ``path``: a result.json, a run folder, or a runs folder."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif (path / results.RESULT_FILE).is_file():
        files = [path / results.RESULT_FILE]
    elif path.is_dir():
        files = sorted(p for p in path.rglob(results.RESULT_FILE) if REFERENCE_FOLDER not in p.parts)
    else:
        raise BenchError(f"{path} does not exist: give a result.json, a run folder or a runs folder")
    found = []
    for file in files:
        try:
            result = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(result, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            raise BenchError(f"{file}: cannot read it as a result ({error})") from None
        if result.get("kind") == "reference" or result.get("status") != "ok":
            continue
        try:
            identity = RunIdentity.from_dict(result.get("identity") or {})
        except (TypeError, ValueError) as error:
            raise BenchError(f"{file}: no usable run identity ({error}); written by an older colorbench?") from None
        found.append(Published(file, result, identity))
    if not found:
        raise BenchError(f"no finished method result under {path}")
    return found


def verdict(published: float | None, reproduced: float | None, ci95) -> str:
    if published is None or reproduced is None:
        return IDENTICAL if published is reproduced else DIFFERS
    if published == reproduced or (math.isinf(published) and published == reproduced):
        return IDENTICAL
    if ci95 and len(ci95) == 2 and None not in ci95 and ci95[0] <= reproduced <= ci95[1]:
        return WITHIN_CI
    return DIFFERS


def environment_differences(published: dict, reproduced: dict) -> list[str]:
    """What differs between the two environments and settings, in words."""
    before, after = published.get("environment") or {}, reproduced.get("environment") or {}
    out = []
    for key in ("device", "cpu_threads", "torch", "cuda", "python"):
        if before.get(key) != after.get(key):
            out.append(f"{key}: {before.get(key)} -> {after.get(key)}")
    old, new = before.get("packages") or {}, after.get("packages") or {}
    out += [f"{name}: {old.get(name)} -> {new.get(name)}" for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name) and name != "torch"]
    if (published.get("identity") or {}).get("precision") != (reproduced.get("identity") or {}).get("precision"):
        out.append(f"precision: {published['identity'].get('precision')} -> {reproduced['identity'].get('precision')}")
    return out


def reproduce_one(published: Published, *, out: Path, device: torch.device, data_root: Path | None,
                  weights_dir: Path | None) -> Reproduction:
    from bench.engine.context import RunConfig
    from bench.runner import run_benchmark

    result, identity = published.result, published.identity
    config = result.get("config") or {}
    threads = (result.get("environment") or {}).get("cpu_threads")
    if device.type == "cpu" and isinstance(threads, int) and threads > 0:
        torch.set_num_threads(threads)  # CPU sums depend on the thread count
    budget = Budget.parse(str(config.get("budget_label") or (result.get("budget") or {}).get("label") or ""))
    run = RunConfig(
        methods=[identity.method], dataset=identity.dataset, budget=budget, device=device, out=out,
        size=identity.size, seeds=[identity.seed], metrics=config.get("metrics") or sorted(result.get("metrics") or {}),
        method_options={identity.method: identity.method_options}, dataset_options=dict(identity.dataset_options),
        data_root=data_root, weights_dir=weights_dir, precision=identity.precision,
        eval_batch_size=int(config.get("eval_batch_size") or 32), samples=0,
    )
    (again,) = [r for r in run_benchmark(run) if r.get("kind") != "reference"]
    again = json.loads(json.dumps(again, default=str))  # as stored: the comparison is on JSON numbers
    reproduction = Reproduction(published, again.get("status"), again.get("error"),
                                environment=environment_differences(result, again))
    details, per_image = result.get("metric_details") or {}, result.get("per_image") or {}
    for name, value in (result.get("metrics") or {}).items():
        now = (again.get("metrics") or {}).get(name)
        ci95 = (details.get(name) or {}).get("ci95")
        entry = {"metric": name, "published": value, "reproduced": now, "ci95": ci95,
                 "verdict": verdict(value, now, ci95), "note": None}
        values = per_image.get(name)
        if isinstance(values, list) and values and isinstance(value, (int, float)) and math.isfinite(value):
            mean = math.fsum(values) / len(values)  # a per-image metric's value is their mean
            if abs(mean - value) > 1e-9 * max(1.0, abs(value)):
                entry.update(verdict=DIFFERS, note=f"the published value is not the mean of its own per-image "
                             f"values ({mean:.6g}): the result was edited or damaged")
        reproduction.metrics.append(entry)
    return reproduction


def reproduce(path: Path, *, out: Path, device: torch.device, data_root: Path | None = None,
              weights_dir: Path | None = None) -> list[Reproduction]:
    published = find_published(path)
    out = Path(out)
    if out.resolve() in [p.path.resolve().parent for p in published] or any(
            out.resolve() in p.path.resolve().parents for p in published):
        raise BenchError(f"--out {out}: the published results live there; give a separate folder")
    return [reproduce_one(p, out=out, device=device, data_root=data_root, weights_dir=weights_dir) for p in published]
