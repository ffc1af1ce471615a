"""LPIPS (Zhang et al. 2018) through the ``lpips`` package: net ``alex``, version 0.1, per image.

The package's linear calibration layers ship inside it; the ImageNet AlexNet trunk normally comes
from torchvision's download. Here it comes from the weight store (``bench.weights``): either
torchvision's ``alexnet-owt-7be5be79.pth`` or the features-only ``alexnet-features-lpips.pth``,
copied into the package's own AlexNet slices. The network code is the package's, unchanged.

LPIPS expects inputs in [-1, 1]; feeding [0, 1] silently gives wrong (smaller) distances. Metrics
receive RGB in [0, 1] by contract, so this metric checks that contract and scales ``x * 2 - 1``
itself.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import torch

from bench.api import BenchError, Metric, hookimpl
from bench.weights import WeightStore

NET, VERSION = "alex", "0.1"
# AlexNet's conv1 (11x11, stride 4) and two 3x3/2 max-pools: smaller inputs leave no pixels.
MIN_SIZE = 31


def trunk_state_dict(state: dict, slices: torch.nn.Module) -> dict:
    """torchvision ``features.<i>.*`` keys -> the lpips AlexNet's ``slice<k>.<i>.*`` keys.

    lpips keeps torchvision's layer indices as the child names inside its five slices, so each
    index maps to exactly one slice. A full torchvision AlexNet state dict (with ``classifier.*``)
    is accepted too: only the ``features.*`` part is used.
    """
    slice_of = {
        index: slice_name
        for slice_name, module in slices.named_children()
        for index, _ in module.named_children()
    }
    mapped = {}
    for key, tensor in state.items():
        prefix, _, rest = key.partition(".")
        if prefix != "features":
            continue
        index, _, param = rest.partition(".")
        if index in slice_of:
            mapped[f"{slice_of[index]}.{index}.{param}"] = tensor
    return mapped


@lru_cache(maxsize=4)
def load_lpips(trunk_path: str, device: str) -> torch.nn.Module:
    """The lpips model with the AlexNet trunk from ``trunk_path``, in eval mode on ``device``."""
    import lpips

    with warnings.catch_warnings():  # torchvision's deprecation notice for `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        # pnet_rand: build the trunk without torchvision's download; its weights are set below.
        model = lpips.LPIPS(net=NET, version=VERSION, pretrained=True, pnet_rand=True, verbose=False)
    try:
        state = torch.load(trunk_path, map_location="cpu", weights_only=True)
        model.net.load_state_dict(trunk_state_dict(state, model.net), strict=True)
    except Exception as error:  # not a state dict, or not an AlexNet trunk
        raise BenchError(f"{trunk_path}: not a usable AlexNet trunk for LPIPS ({error})") from None
    return model.eval().requires_grad_(False).to(device)


def check_unit_range(images: torch.Tensor, what: str) -> None:
    """Metrics receive RGB in [0, 1]; anything else is a caller bug that would skew LPIPS."""
    low, high = images.min().item(), images.max().item()
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{what} must be RGB in [0, 1], got values in [{low:.3g}, {high:.3g}]")


class LPIPS(Metric):
    name = "lpips"
    description = "LPIPS perceptual distance (lpips package, AlexNet trunk, v0.1, inputs in [-1, 1])"
    higher_is_better = False

    def __init__(self, context, options=None):
        super().__init__(context, options)
        store = context.weights if context.weights is not None else WeightStore()
        path: Path = store.path("lpips-alexnet")  # raises Unavailable when missing or refused
        self.model = load_lpips(str(path), str(self.device))

    @property
    def settings(self) -> str:
        return f"lpips-{NET}-v{VERSION}"

    def update(self, pred, target):
        if min(pred.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS ({NET}) needs images of at least {MIN_SIZE} pixels per side")
        check_unit_range(pred, "prediction")
        check_unit_range(target, "target")
        # Contiguous NCHW, as lpips' own tensors are (other layouts round differently in the convs).
        scaled = [(images.float() * 2 - 1).contiguous() for images in (pred, target)]
        distance = self.model(*scaled, normalize=False)
        return distance.flatten()


@hookimpl
def register_metrics(register):
    register(LPIPS)
