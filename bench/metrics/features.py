"""Features of the predicted and the real set for set-level metrics (FID/KID, fd-alex/kd-alex).

One extractor pass per batch serves every metric that shares the features; they stay on the
device until the set-level maths fetches them once. The real set's features are cached per
reference key (dataset + split + size) and extractor, together with a fingerprint of the real
images: a cached entry computed on other images is refused.

The fingerprint is computed on the device, batch by batch, and fetched once: per image a linear
checksum of its 8-bit pixels with fixed pseudo-random weights in [1, 2^24) (exact int64 sums: no
overflow below 2^31 values per image), all checksums hashed in order with sha256. Changing any one
pixel always changes it; it guards against stale caches, not against forgery.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bench.store import safe_name
from bench.store.digest import save_sealed, verify
from bench.progress import warn

CACHE_VERSION = 2  # 2: the device fingerprint (version 1 hashed the bytes on the host)
_WEIGHT_SEED, _WEIGHT_LIMIT = 20240917, 1 << 24


class TargetFingerprint:
    """A fingerprint of the real images of one pass, shared by every cache that checks it."""

    def __init__(self):
        self._sums: list[torch.Tensor] = []
        self._shapes: list[tuple[tuple[int, ...], int]] = []  # (image shape, count) runs
        self._last: torch.Tensor | None = None
        self._weights: torch.Tensor | None = None
        self._digest: str | None = None

    def update(self, target: torch.Tensor) -> None:
        """Add a batch of real images (RGB in [0, 1], from 8-bit values); a batch seen last is skipped."""
        if target is self._last:
            return
        self._last, self._digest = target, None
        pixels = (target.detach() * 255).round().to(torch.int64).flatten(1)
        if self._weights is None or self._weights.shape[0] != pixels.shape[1] or self._weights.device != pixels.device:
            generator = torch.Generator().manual_seed(_WEIGHT_SEED)
            weights = torch.randint(1, _WEIGHT_LIMIT, (pixels.shape[1],), generator=generator, dtype=torch.int64)
            self._weights = weights.to(pixels.device)
        self._sums.append((pixels * self._weights).sum(dim=1))
        shape = tuple(target.shape[1:])
        if self._shapes and self._shapes[-1][0] == shape:  # runs of equal image shapes: batching does not count
            self._shapes[-1] = (shape, self._shapes[-1][1] + target.shape[0])
        else:
            self._shapes.append((shape, target.shape[0]))

    def hexdigest(self) -> str:
        if self._digest is None:
            sums = torch.cat(self._sums).cpu().numpy() if self._sums else np.zeros(0, np.int64)
            digest = hashlib.sha256(repr(self._shapes).encode())
            digest.update(sums.astype("<i8").tobytes())
            self._digest = digest.hexdigest()
        return self._digest


def target_fingerprint(context) -> TargetFingerprint:
    """The pass's fingerprint of the real set (``context.shared`` is cleared for every pass)."""
    return context.shared.setdefault("target-fingerprint", TargetFingerprint())


def reference_cache_path(context, settings: str) -> Path | None:
    if context.cache_dir is None or not context.reference_key:
        return None
    key = context.reference_key
    name = f"{safe_name(key)[:120]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    return Path(context.cache_dir) / f"{name}-{safe_name(settings)}-v{CACHE_VERSION}.pt"


class PairedFeatures:
    """(N, d) features of both sets from ``extract`` (images -> features on the device)."""

    def __init__(self, context, settings: str, extract: Callable[[torch.Tensor], torch.Tensor]):
        self.settings, self.extract = settings, extract
        self.pred: list[torch.Tensor] = []
        self.target: list[torch.Tensor] = []
        self._last_batch: tuple | None = None
        self._predicted: np.ndarray | None = None
        self._reference: np.ndarray | None = None
        self.cache_path = reference_cache_path(context, settings)
        self.fingerprint = target_fingerprint(context) if self.cache_path is not None else None
        self.cached = self._read_cache()

    def _read_cache(self) -> dict | None:
        """The cached real-set features, verified against their digest; a damaged entry is said and rebuilt."""
        if self.cache_path is None or not self.cache_path.is_file():
            return None
        try:
            cached = torch.load(self.cache_path, map_location="cpu", weights_only=True)
        except Exception:
            cached = None
        damaged = verify(cached) if isinstance(cached, dict) else "unreadable"
        if damaged:
            warn(f"cached reference features {self.cache_path}: {damaged}; computing them again")
            return None
        return cached

    def _write_cache(self, features: torch.Tensor, fingerprint: str) -> None:
        # float32 is lossless: the networks' outputs are float32.
        try:
            save_sealed(self.cache_path, {"features": features.float(), "fingerprint": fingerprint})
        except OSError:
            pass  # a cache that cannot be written only costs time next run

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if self._last_batch is not None and self._last_batch[0] is pred and self._last_batch[1] is target:
            return  # another metric already ran this batch
        self._last_batch = (pred, target)
        self.pred.append(self.extract(pred))
        if self.fingerprint is not None:
            self.fingerprint.update(target)
        if self.cached is None:
            self.target.append(self.extract(target))

    def predicted(self) -> np.ndarray:
        if self._predicted is None:
            self._predicted = torch.cat(self.pred).double().cpu().numpy()
        return self._predicted

    def reference(self) -> np.ndarray:
        """Features of the real set: computed in this pass, or from the cache if it matches."""
        if self._reference is not None:
            return self._reference
        if self.cached is not None:
            if self.cached["fingerprint"] != self.fingerprint.hexdigest():
                self.cache_path.unlink(missing_ok=True)
                raise RuntimeError(f"cached reference features {self.cache_path} were computed on other images "
                                   "than this test set; removed, the next evaluation recomputes them")
            self._reference = self.cached["features"].double().numpy()
        else:
            features = torch.cat(self.target).cpu()
            if self.cache_path is not None:
                self._write_cache(features, self.fingerprint.hexdigest())
            self._reference = features.double().numpy()
        return self._reference
