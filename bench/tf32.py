"""TF32 on or off, whichever switches this torch has.

torch 2.9 replaced ``torch.backends.cuda.matmul.allow_tf32`` / ``torch.backends.cudnn.allow_tf32`` by
``fp32_precision`` ("ieee" | "tf32" | "none" = inherit from the parent setting); the old names are
deprecated aliases, and reading them after the new ones were set can raise. So only one API is ever
touched: the new one where it exists, the old one before it.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

_NEW_API = hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.cudnn, "conv")


def _leaves():
    """The settings TF32 is switched by: matmul, cuDNN convolutions, cuDNN RNNs."""
    cudnn = torch.backends.cudnn
    return torch.backends.cuda.matmul, cudnn.conv, cudnn.rnn


def _effective(leaf, parents) -> str:
    for setting in (leaf, *parents):
        if setting.fp32_precision != "none":
            return setting.fp32_precision
    return "ieee"


def tf32_enabled() -> tuple[bool, bool]:
    """(matmul, cuDNN) may use TF32."""
    if not _NEW_API:
        return bool(torch.backends.cuda.matmul.allow_tf32), bool(torch.backends.cudnn.allow_tf32)
    matmul, conv, _ = _leaves()
    return (_effective(matmul, [torch.backends]) == "tf32",
            _effective(conv, [torch.backends.cudnn, torch.backends]) == "tf32")


def save_tf32() -> tuple:
    """The raw settings, for ``restore_tf32``."""
    if not _NEW_API:
        return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    return tuple(leaf.fp32_precision for leaf in _leaves())


def restore_tf32(saved: tuple) -> None:
    if not _NEW_API:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        return
    for leaf, value in zip(_leaves(), saved):
        leaf.fp32_precision = value


def set_tf32(enabled: bool) -> None:
    """TF32 on or off for matmul and cuDNN alike."""
    if not _NEW_API:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
        return
    for leaf in _leaves():
        leaf.fp32_precision = "tf32" if enabled else "ieee"


@contextmanager
def tf32_disabled():
    """Full fp32 inside; the caller's settings restored afterwards."""
    saved = save_tf32()
    set_tf32(False)
    try:
        yield
    finally:
        restore_tf32(saved)
