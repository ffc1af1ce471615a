"""Set-level distances between the colorized and the real test set: FID/KID, fd-alex/kd-alex.

FID and KID go through pytorch-fid.

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

``fd-alex`` and ``kd-alex`` are the same Frechet and kernel distances in another feature space: the
256-d globally average-pooled conv5 output (after its ReLU) of the LPIPS AlexNet trunk, with
LPIPS's input normalisation ([-1, 1], then its ScalingLayer). They need only the LPIPS weights and
are well-posed at the flowers test split's N = 340 (> 256: a full-rank covariance). They are NOT
FID/KID: their values are comparable only with themselves, at the same N and image size.

One feature pass per batch serves both metrics of a pair (shared through ``MetricContext.shared``;
the AlexNet trunk is also LPIPS's). The real set's features are cached per dataset + split + size
(``MetricContext.reference_key``) and extractor, with a fingerprint of the images
(``bench.metrics.features``); ``bench score`` (no key) computes both sides.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, ClassVar
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from bench.api import BenchError, Metric, Options, hookimpl
from bench.metrics.features import PairedFeatures
from bench.metrics.perceptual import shared_trunk
from bench.weights import KNOWN_WEIGHTS, WeightStore

KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 0


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
    """(N, dims) float32 features of RGB [0, 1] images, on their device, as pytorch-fid's ``get_activations``."""
    # Contiguous NCHW like pytorch-fid's DataLoader batches: other memory layouts pick other conv
    # kernels, whose float rounding differs.
    out = model(images.float().contiguous())[0]
    if out.shape[2:] != (1, 1):  # pytorch-fid pools the lower blocks' maps the same way
        out = F.adaptive_avg_pool2d(out, output_size=(1, 1))
    return out.flatten(1)


def inception_pair(context, dims: int) -> PairedFeatures:
    """The pass's Inception features of both sets, shared by FID and KID; Unavailable without weights."""
    key = f"inception-features-{dims}"
    if key not in context.shared:
        model = fid_inception(context, dims)
        settings = f"inception-{dims}-{KNOWN_WEIGHTS['fid-inception'].sha256}"
        context.shared[key] = PairedFeatures(context, settings, lambda images: inception_features(model, images))
    return context.shared[key]


def alexnet_pair(context) -> PairedFeatures:
    """The pass's pooled AlexNet conv5 features of both sets, shared by fd-alex and kd-alex."""
    if "alexnet-conv5" not in context.shared:
        trunk = shared_trunk(context)  # Unavailable without the LPIPS weights
        context.shared["alexnet-conv5"] = PairedFeatures(context, f"alexnet-conv5-{trunk.path.stem}", trunk.conv5)
    return context.shared["alexnet-conv5"]


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
    # calls sqrtm(disp=False), which recent SciPy flags as deprecated; a singular product (N <= d)
    # is reported in the result (frechet_result's warning), not as a SciPy warning on stderr.
    from scipy.linalg import LinAlgWarning

    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", LinAlgWarning)
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


def frechet_result(x: np.ndarray, y: np.ndarray) -> dict:
    """The Frechet distance with what a reader must know: a rank-deficient covariance, pytorch-fid's note."""
    if min(len(x), len(y)) < 2:
        raise ValueError("the Frechet distance needs at least 2 images per set")
    value, note = frechet_distance(x, y)
    result = {"value": value}
    n, dims = len(x), x.shape[1]
    if n <= dims:  # a covariance of N samples has rank <= N - 1
        result["warning"] = (f"N={n} <= {dims}: the {dims}-d feature covariance is rank-deficient, so the Frechet "
                             "distance is biased upward and only comparable at equal N; see the kernel distance")
    if note:
        result["note"] = note
    return result


# -- the metrics -----------------------------------------------------------------------------
class SetDistance(Metric):
    """A distance between the predicted and the real set, in features shared by the metrics of a pass."""

    per_image = False
    higher_is_better = False
    distance: ClassVar[Callable[[np.ndarray, np.ndarray], dict]]  # {"value": ..., extras}

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.features = self.shared_features(context)

    def shared_features(self, context) -> PairedFeatures:
        raise NotImplementedError

    def update(self, pred, target):
        self.features.update(pred, target)
        return None

    def compute(self):
        x, y = self.features.predicted(), self.features.reference()
        return {**self.distance(x, y), "n": len(x), "n_reference": len(y)}


@dataclass
class InceptionOptions(Options):
    dims: int = 2048  # pytorch-fid's --dims: 2048 (final pool, the standard), 768, 192 or 64

    def validate(self) -> None:
        if self.dims not in (2048, 768, 192, 64):
            raise BenchError(f"option dims must be one of 2048, 768, 192, 64 (pytorch-fid's), got {self.dims}")


class _InceptionMetric(SetDistance):
    Options = InceptionOptions

    def shared_features(self, context):
        return inception_pair(context, self.options.dims)


class FID(_InceptionMetric):
    name = "fid"
    description = "Frechet Inception Distance to the real test set (pytorch-fid, FID Inception weights)"
    distance = staticmethod(frechet_result)

    @property
    def settings(self) -> str:
        return f"fid-inception-{self.options.dims}"


class KID(_InceptionMetric):
    name = "kid"
    description = "Kernel Inception Distance to the real test set (unbiased MMD^2, cubic polynomial kernel)"
    distance = staticmethod(kernel_inception_distance)

    @property
    def settings(self) -> str:
        return f"kid-inception-{self.options.dims}-poly3-subsets{KID_SUBSETS}"


ALEX_FEATURES = "alexnet-lpips-trunk-conv5relu-avgpool256-input-lpips-scaling"


class _AlexMetric(SetDistance):
    def shared_features(self, context):
        return alexnet_pair(context)

    def finish(self):
        shared_trunk(self.context).finish()


class FDAlex(_AlexMetric):
    name = "fd-alex"
    description = ("Frechet distance in LPIPS's AlexNet pooled conv5 features (256-d) to the real test set; "
                   "not FID, comparable only with itself")
    distance = staticmethod(frechet_result)

    @property
    def settings(self) -> str:
        return f"fd-{ALEX_FEATURES}"


class KDAlex(_AlexMetric):
    name = "kd-alex"
    description = ("Kernel distance (unbiased MMD^2, cubic polynomial kernel) in LPIPS's AlexNet pooled conv5 "
                   "features (256-d) to the real test set; not KID, comparable only with itself")
    distance = staticmethod(kernel_inception_distance)

    @property
    def settings(self) -> str:
        return f"kd-{ALEX_FEATURES}-poly3-subsets{KID_SUBSETS}"


@hookimpl
def register_metrics(register):
    register(FID)
    register(KID)
    register(FDAlex)
    register(KDAlex)
