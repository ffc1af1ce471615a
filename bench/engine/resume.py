"""Resume state: everything needed to continue an interrupted run exactly where it stopped.

``resume.pt`` in the run folder holds the method's full training state (networks, optimisers,
schedule position, torch RNG streams, extras such as image pools), the sampler's position, the
training record (steps, time used, loss log) and Python's and NumPy's RNG states. It is written
atomically every few minutes of training and when a stop is requested, keyed by the run's
``run_key`` so it can never be loaded into another run, and removed once the run's result is
written. With a step budget on the CPU, a resumed run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from bench.engine.training import TrainingRecord
from bench.errors import BenchError
from bench.method import Method
from bench.store.digest import check_sealed, save_sealed

RESUME_FILE = "resume.pt"
FORMAT = "colorbench-resume-1"
FRESH_HINT = "run the same command with --fresh to start this run over"


def _numpy_state() -> dict:
    name, keys, position, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_numpy_state(state: dict) -> None:
    np.random.set_state((state["name"], state["keys"].numpy().astype(np.uint32), state["position"],
                         state["has_gauss"], state["gauss"]))


def save_resume(path: Path, run_key: str, method: Method, sampler, record: TrainingRecord) -> None:
    payload = {
        "format": FORMAT,
        "run_key": run_key,
        "method": method.state_dict(),
        "sampler": sampler.state_dict(),
        "record": record.state_dict(),
        "python_rng": random.getstate(),
        "numpy_rng": _numpy_state(),
    }
    save_sealed(path, payload)  # verified on load


def load_resume(path: Path, run_key: str, method: Method, sampler) -> TrainingRecord:
    """Restore ``method`` and ``sampler`` from ``path``; returns the training record to continue."""
    try:
        payload = torch.load(path, map_location=method.device, weights_only=True)
    except Exception as error:
        raise BenchError(f"{path}: unreadable resume state ({type(error).__name__}); {FRESH_HINT}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BenchError(f"{path}: not a colorbench resume state (expected format {FORMAT}); {FRESH_HINT}")
    check_sealed(payload, f"resume state {path}", FRESH_HINT)
    if payload.get("run_key") != run_key:
        raise BenchError(f"{path}: resume state of another run ({payload.get('run_key')}, expected {run_key})")
    method.load_state_dict(payload["method"], restore_training=True)
    sampler.load_state_dict(payload["sampler"])
    random.setstate(payload["python_rng"])
    _set_numpy_state(payload["numpy_rng"])
    return TrainingRecord.from_state(payload["record"])
