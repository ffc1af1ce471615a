"""The reference rows of a test split: the gray input (what doing nothing scores) and the ground truth (each metric's
ceiling), scored by the same metric pass on the same images as every method.
"""

from __future__ import annotations

import datetime as dt
import time

from bench.engine.context import RunContext
from bench.environment import environment
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.evaluation.test_split import fill_scores, gray_uint8
from bench.store import results
from bench.store.identity import ReferenceIdentity

REFERENCES = {"gray": "gray input", "truth": "ground truth"}


def execute_reference(reference: str, context: RunContext, dataset_options: dict) -> dict:
    """A reference row (gray input or ground truth), scored by the same metric code on the same images."""
    identity = ReferenceIdentity(context.dataset.name, dataset_options, context.size, reference)
    folder = identity.folder(context.out)
    previous = results.read_result(folder) if (folder / results.RESULT_FILE).is_file() else None
    if previous and previous.get("status") == "ok" and all(
        (previous.get("metric_details") or {}).get(n, {}).get("status") == "ok" for n in context.metric_names
    ):
        return previous
    targets = context.test_set.images
    result = {
        "schema": results.SCHEMA, "kind": "reference", "reference": reference, "method": REFERENCES[reference],
        "method_plugin": "colorbench (reference)",
        "method_description": {"gray": "the gray input itself (ab = 0): what doing nothing scores",
                               "truth": "the ground truth against itself: the ceiling of each metric"}[reference],
        "dataset": identity.dataset, "size": identity.size, "seed": None, "status": "ok", "error": None,
        "identity": identity.to_dict(), "run_key": identity.run_key, "budget": {}, "timings": {},
        "environment": environment(context.device),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    metrics, unavailable = build_metrics(context.metric_names, context.metric_context)
    bs = context.eval_batch_size

    def batches():
        for first in range(0, targets.shape[0], bs):
            target = targets[first : first + bs].to(context.device)
            yield (gray_uint8(target) if reference == "gray" else target), target

    start = time.perf_counter()
    details = unavailable | evaluate(batches(), metrics, targets.shape[0], label=f"score reference {reference}")
    fill_scores(result, details, context, time.perf_counter() - start)
    results.write_result(folder, result)
    return result
