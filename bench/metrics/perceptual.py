"""LPIPS (Zhang et al. 2018) through the ``lpips`` package: net ``alex``, version 0.1, per image.

The package's linear calibration layers ship inside it; the ImageNet AlexNet trunk normally comes
from torchvision's download. Here it comes from the weight store (``bench.weights``): either
torchvision's ``alexnet-owt-7be5be79.pth`` or the features-only ``alexnet-features-lpips.pth``,
copied into the package's own AlexNet slices. The network code is the package's, unchanged; the
trunk runs once per image tensor and its outputs are shared with ``fd-alex``/``kd-alex``
(``AlexTrunk``), so the distance is the package's forward written from its own parts
(``normalize_tensor``, the ``lins``, ``spatial_average``) -- equal to ``lpips.LPIPS`` (tested).

LPIPS expects inputs in [-1, 1]; feeding [0, 1] silently gives wrong (smaller) distances. Metrics
receive RGB in [0, 1] by contract, so this metric scales ``x * 2 - 1`` itself and checks that
contract (after the pass, in ``finish``: the input range is tracked on the device).
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


class AlexTrunk:
    """The LPIPS AlexNet trunk's five layer outputs, one pass per image tensor, shared in a pass.

    LPIPS uses all five layers; ``fd-alex``/``kd-alex`` the pooled conv5 (its ReLU output, the
    last layer). Inputs go in as LPIPS v0.1 feeds them: RGB [0, 1] -> [-1, 1] -> its ScalingLayer
    (the ImageNet-like shift and scale). The outputs of the last two tensors (a batch's prediction
    and target) are kept, so a second metric asking for the same tensor costs nothing.
    """

    def __init__(self, context):
        store = context.weights if context.weights is not None else WeightStore()
        self.path: Path = store.path("lpips-alexnet")  # raises Unavailable when missing or refused
        self.model = load_lpips(str(self.path), str(context.device))
        self._recent: list[tuple[torch.Tensor, tuple]] = []
        self._low: torch.Tensor | None = None  # the input range seen, kept on the device
        self._high: torch.Tensor | None = None

    def layers(self, images: torch.Tensor) -> tuple:
        """relu1 ... relu5 of (N, 3, H, W) RGB in [0, 1]."""
        for held, outputs in self._recent:
            if held is images:
                return outputs
        if min(images.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"the LPIPS AlexNet trunk needs images of at least {MIN_SIZE} pixels per side")
        low, high = torch.aminmax(images.detach())
        self._low = low if self._low is None else torch.minimum(self._low, low)
        self._high = high if self._high is None else torch.maximum(self._high, high)
        # Contiguous NCHW, as lpips' own tensors are (other layouts round differently in the convs).
        outputs = tuple(self.model.net(self.model.scaling_layer((images.float() * 2 - 1).contiguous())))
        self._recent = [*self._recent[-1:], (images, outputs)]
        return outputs

    def conv5(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 256): conv5 after its ReLU (torchvision's ``features[:12]``), global average pooled."""
        return self.layers(images)[-1].mean(dim=(2, 3))

    def finish(self) -> None:
        """End of the pass: drop the kept outputs, and check the inputs were RGB in [0, 1].

        Anything else is a caller bug that would skew the distances. Checked after the pass, not
        per batch (that would wait on the device every batch); every metric of the pass that used
        the trunk reports it.
        """
        self._recent = []
        if self._low is None:
            return
        low, high = torch.stack([self._low, self._high]).tolist()
        if low < 0.0 or high > 1.0:
            raise ValueError(f"images must be RGB in [0, 1], got values in [{low:.3g}, {high:.3g}]")


def shared_trunk(context) -> AlexTrunk:
    """The pass's AlexNet trunk (``context.shared`` is cleared for every pass); Unavailable without weights."""
    if "lpips-alexnet-trunk" not in context.shared:
        context.shared["lpips-alexnet-trunk"] = AlexTrunk(context)
    return context.shared["lpips-alexnet-trunk"]


def lpips_distance(model, layers0: tuple, layers1: tuple) -> torch.Tensor:
    """The package's ``LPIPS.forward`` (v0.1, lpips=True, spatial=False) from trunk outputs computed once."""
    import lpips

    total = 0
    for lin, a, b in zip(model.lins, layers0, layers1):
        total = total + lpips.spatial_average(lin((lpips.normalize_tensor(a) - lpips.normalize_tensor(b)) ** 2), keepdim=True)
    return total.flatten()


class LPIPS(Metric):
    name = "lpips"
    description = "LPIPS perceptual distance (lpips package, AlexNet trunk, v0.1, inputs in [-1, 1])"
    higher_is_better = False

    def __init__(self, context, options=None):
        super().__init__(context, options)
        self.trunk = shared_trunk(context)
        self.model = self.trunk.model

    @property
    def settings(self) -> str:
        return f"lpips-{NET}-v{VERSION}"

    def update(self, pred, target):
        return lpips_distance(self.model, self.trunk.layers(pred), self.trunk.layers(target))

    def finish(self):
        self.trunk.finish()


@hookimpl
def register_metrics(register):
    register(LPIPS)
