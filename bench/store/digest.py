"""Content digests of stored payloads: damaged bytes are found when a file is loaded, never trained on.

``torch.load`` does not check the CRCs of a checkpoint's zip entries, so a few garbled bytes inside a
tensor load silently as other weights. Every payload the store writes with ``torch.save`` (decode-cache
entries, ``checkpoint.pt``, ``resume.pt``, feature caches) is *sealed*: it carries the SHA-256 of its
content -- every tensor's dtype, shape and bytes and every plain value, walked in a fixed order -- and
is verified when loaded. The digest covers what the payload means, not the file's bytes, so it does
not depend on the zip layout of the torch version that wrote it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from bench.errors import BenchError
from bench.progress import warn
from bench.store.atomic import atomic_write

DIGEST_KEY = "sha256"


def _feed(hasher, value) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        hasher.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        if tensor.numel():
            flat = tensor.to("cpu").contiguous().reshape(-1)
            hasher.update(flat.view(torch.uint8).numpy().data)
    elif isinstance(value, dict):
        hasher.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(hasher, key)
            _feed(hasher, value[key])
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for item in value:
            _feed(hasher, item)
    else:  # str, int, float, bool, None, torch.dtype...: their repr is exact and stable
        text = repr(value).encode()
        hasher.update(f"V{type(value).__name__}:{len(text)}:".encode() + text)


def content_digest(value) -> str:
    """SHA-256 (hex) of a payload's content: nested dicts, lists and tuples of tensors and plain values."""
    hasher = hashlib.sha256()
    _feed(hasher, value)
    return hasher.hexdigest()


def seal(payload: dict) -> dict:
    """The payload with its digest added (under ``DIGEST_KEY``), ready for ``torch.save``."""
    content = {k: v for k, v in payload.items() if k != DIGEST_KEY}
    return content | {DIGEST_KEY: content_digest(content)}


def verify(payload: dict) -> str | None:
    """None when the loaded payload matches its digest; else why not, in a few words."""
    stored = payload.get(DIGEST_KEY)
    if not isinstance(stored, str):
        return "it carries no content digest (written by an older colorbench)"
    if content_digest({k: v for k, v in payload.items() if k != DIGEST_KEY}) != stored:
        return "its content does not match its digest (damaged bytes)"
    return None


def check_sealed(payload: dict, what: str, refusal: str) -> None:
    """Refuse a damaged payload: ``BenchError(f"{what} is damaged: <why>; {refusal}")``. One written before
    digests existed is used as it is, with a one-line warning (refusing it would lose the user's work)."""
    damaged = verify(payload)
    if damaged and DIGEST_KEY in payload:
        raise BenchError(f"{what} is damaged: {damaged}; {refusal}")
    if damaged:
        warn(f"{what}: {damaged}, so it cannot be verified; using it as it is")


def save_sealed(path: Path, payload: dict) -> Path:
    """``torch.save`` the sealed payload to ``path`` atomically. Written through a Python file object, so a full
    disk is an ``OSError`` (``no space left on device``, naming the file), not torch's ``unexpected pos``."""
    sealed = seal(payload)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            torch.save(sealed, handle)
    return atomic_write(path, write)
