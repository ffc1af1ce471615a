"""Test-time randomness: a method random at test time draws each image's randomness from its own seed, a function
of (run seed, image index, draw) only -- for the test split (``bench.evaluation.test_split``) and for a user's photos
(``bench.photo``) alike.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.method import Method


def test_time_seed(run_seed: int, index: int, draw: int = 0) -> int:
    """The seed of one image's test-time randomness: a function of (run seed, image index, draw) only.
    Draw 0 is the scored one; ``--test-draws`` adds draws 1, 2, ... for the spread."""
    entropy = [run_seed, index] + ([draw] if draw else [])
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


def colorize_seeded(method: Method, L: torch.Tensor, *, run_seed: int, first_index: int, draw: int = 0) -> torch.Tensor:
    """``method.colorize(L)``; for a method random at test time, image by image, each drawing from
    its own seed (``test_time_seed(run_seed, first_index + k, draw)``) with the process's generators restored
    afterwards, so the output never depends on the process's history or on the batch."""
    if not method.random_at_test_time:
        return method.colorize(L)
    devices = [method.device] if method.device.type == "cuda" else []
    outputs = []
    for k, image in enumerate(L.split(1)):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(test_time_seed(run_seed, first_index + k, draw))
            outputs.append(method.colorize(image))
    return torch.cat(outputs)
