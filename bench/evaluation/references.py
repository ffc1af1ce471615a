"""The reference rows of a test split: the gray input (what doing nothing scores) and the ground truth (each metric's
ceiling), scored by the same metric pass on the same images as every method.
"""

from __future__ import annotations

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
    result = results.result_header(
        "reference", identity, method=REFERENCES[reference], plugin="colorbench (reference)",
        description={"gray": "the gray input itself (ab = 0): what doing nothing scores",
                     "truth": "the ground truth against itself: the ceiling of each metric"}[reference],
        seed=None, environment=environment(context.device), reference=reference)
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


def execute_references(context: RunContext) -> list[dict]:
    """Both reference rows of the context's test split, in ``REFERENCES`` order."""
    options = context.dataset.options.to_dict()
    return [execute_reference(reference, context, options) for reference in REFERENCES]
