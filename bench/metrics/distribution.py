"""FID and KID between the colorized test set and the real test set, through pytorch-fid.

Features: pytorch-fid's ``InceptionV3`` with the FID weights (``pt_inception-2015-12-05``), its
bilinear resize to 299x299 and [-1, 1] scaling, the 2048-d final average pool -- exactly the
model ``python -m pytorch_fid`` uses. Its download is bypassed: the weights come from the weight
store (``bench.weights``), and when they are missing both metrics are *unavailable* -- nothing is
ever computed with other weights under these names.

* FID: mean and covariance as in pytorch-fid (``np.cov(rowvar=False)``), distance by its
  ``calculate_frechet_distance``. With N <= 2048 images the 2048x2048 covariance is rank-deficient
  and FID is biased upward (not comparable across set sizes): the result carries N and a warning.
* KID (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased MMD^2 estimate with the
  polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over 100 random subsets (drawn without
  replacement, fixed seed); std is the population std over those subsets. Subset size is
  min(1000, N // 2): the standard 1000 for N >= 2000, and for smaller sets half the set, because
  subsets of the whole set would all be identical and their std meaningless. The estimate is
  unbiased at any subset size, so the value is comparable; the subset size is reported.

One Inception pass per batch serves both metrics (shared through ``MetricContext.shared``). The
real set's features are cached per dataset + split + size (``MetricContext.reference_key``) with a
fingerprint of the images; ``bench score`` (no key) computes both sides.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from bench.api import BenchError, Metric, Options, hookimpl
from bench.store import safe_name
from bench.weights import KNOWN_WEIGHTS, WeightStore

KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 0
CACHE_VERSION = 1


# -- the feature extractor -------------------------------------------------------------------
def build_fid_inception(state_dict: dict, dims: int = 2048) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (its FID variant, resize and input scaling) with ``state_dict``.

    pytorch-fid fetches its weights with ``load_state_dict_from_url`` inside ``fid_inception_v3``;
    that one call is pointed at ``state_dict`` while the model is built, so the architecture and
    loading code stay pytorch-fid's own.
    """
    from pytorch_fid import inception

    block = inception.InceptionV3.BLOCK_INDEX_BY_DIM[dims]
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
        model = inception.InceptionV3([block], resize_input=True, normalize_input=True, use_fid_inception=True)
    return model.eval()


@lru_cache(maxsize=2)
def load_fid_inception(path: str, dims: int, device: str) -> torch.nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return build_fid_inception(state, dims).to(device)


def fid_inception(context, dims: int) -> torch.nn.Module:
    """The FID Inception on the context's device; ``Unavailable`` when its weights are missing."""
    store = context.weights if context.weights is not None else WeightStore()
    path = store.path("fid-inception")
    return load_fid_inception(str(path), dims, str(context.device))


def inception_features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(N, dims) float64 features of RGB [0, 1] images, as pytorch-fid's ``get_activations``."""
    # Contiguous NCHW like pytorch-fid's DataLoader batches: other memory layouts pick other conv
    # kernels, whose float rounding differs.
    out = model(images.float().contiguous())[0]
    if out.shape[2:] != (1, 1):  # pytorch-fid pools the lower blocks' maps the same way
        out = F.adaptive_avg_pool2d(out, output_size=(1, 1))
    return out.flatten(1).double().cpu()


def fingerprint_update(digest, images: torch.Tensor) -> None:
    digest.update((images * 255).round().to(torch.uint8).cpu().numpy().tobytes())


class InceptionFeatures:
    """Collects features of both sets, one Inception pass per batch, for every metric that asks."""

    def __init__(self, context, dims: int):
        self.model = fid_inception(context, dims)
        self.dims = dims
        self.pred: list[torch.Tensor] = []
        self.target: list[torch.Tensor] = []
        self._last_batch: tuple | None = None
        self._target_digest = hashlib.sha256()
        self._reference: np.ndarray | None = None
        self.cache_path = None
        if context.cache_dir is not None and context.reference_key:
            key = context.reference_key
            name = f"{safe_name(key)[:120]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
            self.cache_path = Path(context.cache_dir) / f"{name}-{self.settings}-v{CACHE_VERSION}.pt"
        self.cached = self._read_cache()

    @property
    def settings(self) -> str:
        return f"inception-{self.dims}-{KNOWN_WEIGHTS['fid-inception'].sha256}"

    def _read_cache(self) -> dict | None:
        if self.cache_path is None or not self.cache_path.is_file():
            return None
        try:
            return torch.load(self.cache_path, map_location="cpu", weights_only=True)
        except Exception:
            return None  # a broken entry is recomputed

    def _write_cache(self, features: torch.Tensor, fingerprint: str) -> None:
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(".tmp")
            # float32 is lossless: the network's outputs are float32.
            torch.save({"features": features.float(), "fingerprint": fingerprint}, tmp)
            tmp.replace(self.cache_path)
        except OSError:
            pass  # a cache that cannot be written only costs time next run

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if self._last_batch is not None and self._last_batch[0] is pred and self._last_batch[1] is target:
            return  # another metric already ran this batch
        self._last_batch = (pred, target)
        self.pred.append(inception_features(self.model, pred))
        fingerprint_update(self._target_digest, target)
        if self.cached is None:
            self.target.append(inception_features(self.model, target))

    def predicted(self) -> np.ndarray:
        return torch.cat(self.pred).numpy()

    def reference(self) -> np.ndarray:
        """Features of the real set: computed in this pass, or from the cache if it matches."""
        if self._reference is not None:
            return self._reference
        fingerprint = self._target_digest.hexdigest()
        if self.cached is not None:
            if self.cached["fingerprint"] != fingerprint:
                self.cache_path.unlink(missing_ok=True)
                raise RuntimeError(f"cached reference features {self.cache_path} were computed on other images "
                                   "than this test set; removed, the next evaluation recomputes them")
            self._reference = self.cached["features"].double().numpy()
        else:
            features = torch.cat(self.target)
            if self.cache_path is not None:
                self._write_cache(features, fingerprint)
            self._reference = features.numpy()
        return self._reference


# -- the statistics --------------------------------------------------------------------------
def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance exactly as pytorch-fid's ``calculate_activation_statistics``."""
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """FID of two feature sets with pytorch-fid's function, and any note it printed."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    (mu1, sigma1), (mu2, sigma2) = gaussian_statistics(x), gaussian_statistics(y)
    printed = io.StringIO()
    # pytorch-fid prints its "singular product" note (it must not corrupt `--json` output) and
    # calls sqrtm(disp=False), which recent SciPy flags as deprecated.
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        value = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
    return float(value), printed.getvalue().strip()


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples, kernel (x.y / d + 1)^3."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid_subset_size(n: int, subset_size: int = KID_SUBSET_SIZE) -> int:
    return min(subset_size, n // 2)


def kernel_inception_distance(x: np.ndarray, y: np.ndarray, *, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED) -> dict:
    m = kid_subset_size(min(len(x), len(y)), subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 4 images per set, got {min(len(x), len(y))}")
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(subsets):
        ix = rng.choice(len(x), m, replace=False)
        iy = rng.choice(len(y), m, replace=False)
        estimates.append(polynomial_mmd2(x[ix], y[iy]))
    return {"value": float(np.mean(estimates)), "std": float(np.std(estimates)), "subsets": subsets, "subset_size": m}


# -- the metrics -----------------------------------------------------------------------------
@dataclass
class InceptionOptions(Options):
    dims: int = 2048  # pytorch-fid's --dims: 2048 (final pool, the standard), 768, 192 or 64

    def validate(self) -> None:
        if self.dims not in (2048, 768, 192, 64):
            raise BenchError(f"option dims must be one of 2048, 768, 192, 64 (pytorch-fid's), got {self.dims}")


class _InceptionMetric(Metric):
    per_image = False
    higher_is_better = False
    Options = InceptionOptions

    def __init__(self, context, options=None):
        super().__init__(context, options)
        dims = self.options.dims
        key = f"inception-features-{dims}"
        if key not in context.shared:
            context.shared[key] = InceptionFeatures(context, dims)  # Unavailable without weights
        self.features = context.shared[key]

    def update(self, pred, target):
        self.features.update(pred, target)
        return None

    def compute(self):
        x, y = self.features.predicted(), self.features.reference()
        return {**self.distance(x, y), "n": len(x), "n_reference": len(y)}

    def distance(self, x: np.ndarray, y: np.ndarray) -> dict:
        """{"value": ..., extras} between predicted features ``x`` and reference features ``y``."""
        raise NotImplementedError


class FID(_InceptionMetric):
    name = "fid"
    description = "Frechet Inception Distance to the real test set (pytorch-fid, FID Inception weights)"

    @property
    def settings(self) -> str:
        return f"fid-inception-{self.options.dims}"

    def distance(self, x, y):
        if min(len(x), len(y)) < 2:
            raise ValueError("FID needs at least 2 images per set")
        value, note = frechet_distance(x, y)
        result = {"value": value}
        dims = self.options.dims
        if len(x) <= dims:  # a covariance of N samples has rank <= N - 1
            result["warning"] = (f"N={len(x)} <= {dims}: the {dims}-d feature covariance is rank-deficient, "
                                 "so FID is biased upward and only comparable at equal N; see KID")
        if note:
            result["note"] = note
        return result


class KID(_InceptionMetric):
    name = "kid"
    description = "Kernel Inception Distance to the real test set (unbiased MMD^2, cubic polynomial kernel)"

    @property
    def settings(self) -> str:
        return f"kid-inception-{self.options.dims}-poly3-subsets{KID_SUBSETS}"

    def distance(self, x, y):
        return kernel_inception_distance(x, y)


@hookimpl
def register_metrics(register):
    register(FID)
    register(KID)
