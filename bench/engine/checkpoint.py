"""Checkpoints: everything needed to restore a trained method, loadable with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path

import torch

from bench import registry
from bench.errors import BenchError
from bench.method import Method, MethodContext
from bench.store.results import atomic_write

FORMAT = "colorbench-checkpoint-1"


def save_checkpoint(path: Path, method: Method, method_name: str, dataset: str, steps: int,
                    run_key: str | None = None) -> None:
    payload = {
        "format": FORMAT,
        "method": method_name,
        "options": method.options.to_dict(),
        "size": method.size,
        "dataset": dataset,
        "steps": steps,
        "run_key": run_key,
        "state": method.state_dict(),
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Path, device="cpu", *, restore_training: bool = False) -> tuple[Method, dict]:
    """Rebuild the method a checkpoint was saved from; returns (method, checkpoint metadata)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise BenchError(f"{path} is not a readable colorbench checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BenchError(f"{path} is not a colorbench checkpoint (expected format {FORMAT})")
    cls = registry.methods().get(payload["method"]).cls
    options = cls.Options.from_dict(payload["options"])
    # weights=None: the checkpoint already holds every weight, nothing pretrained is fetched.
    method = cls(options, MethodContext(size=payload["size"], device=device, weights=None))
    try:
        method.load_state_dict(payload["state"], restore_training=restore_training)
    except (KeyError, RuntimeError) as error:
        raise BenchError(f"{path}: checkpoint does not match method {payload['method']!r} ({error})") from None
    meta = {k: v for k, v in payload.items() if k != "state"}
    return method, meta
