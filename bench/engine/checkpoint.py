"""Checkpoints: everything needed to restore a trained method, loadable with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from bench import __version__, registry
from bench.errors import BenchError
from bench.method import Method, MethodContext
from bench.store.digest import check_sealed, save_sealed

FORMAT = "colorbench-checkpoint-1"
EXPECTED = f"a colorbench checkpoint ({FORMAT}, the checkpoint.pt `bench run` writes)"


def _whole(value, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


# Every field load_checkpoint needs, with its check and what it must be.
FIELDS = {
    "method": (lambda v: isinstance(v, str) and bool(v), "a method name"),
    "options": (lambda v: isinstance(v, dict), "a dict of method options"),
    "size": (lambda v: _whole(v, 1), "a positive whole number of pixels"),
    "dataset": (lambda v: isinstance(v, str), "a dataset name"),
    "steps": (lambda v: _whole(v, 0), "a whole number of training steps"),
    "state": (lambda v: isinstance(v, dict) and isinstance(v.get("nets"), dict),
              "a dict with the networks' weights under 'nets'"),
}


def save_checkpoint(path: Path, method: Method, method_name: str, dataset: str, steps: int,
                    run_key: str | None = None) -> None:
    payload = {
        "format": FORMAT,
        "colorbench_version": __version__,
        "method": method_name,
        "options": method.options.to_dict(),
        "size": method.size,
        "dataset": dataset,
        "steps": steps,
        "run_key": run_key,
        "state": method.inference_state_dict(),  # colorizing's networks only; the training state is resume.pt's
    }
    save_sealed(path, payload)  # verified on load: torch.load does not notice garbled tensor bytes


def load_checkpoint(path: Path, device="cpu", *, restore_training: bool = False) -> tuple[Method, dict]:
    """Rebuild the method a checkpoint was saved from; returns (method, checkpoint metadata).

    Anything else (a folder, a text file, a truncated file, another tool's ``.pt``, missing or
    wrong metadata) is refused with a one-line :class:`BenchError` saying what the file is.
    """
    path = Path(path)
    payload = _read_payload(path, device)
    _check_metadata(path, payload)
    name = payload["method"]
    try:
        cls = registry.methods().get(name).cls
        options = cls.Options.from_dict(payload["options"])
        cls.check_size(payload["size"], options)
        # weights=None: the checkpoint already holds every weight, nothing pretrained is fetched.
        method = cls(options, MethodContext(size=payload["size"], device=device, weights=None))
    except BenchError as error:
        raise BenchError(f"checkpoint {path} (method {name!r}, size {payload['size']}): {error}") from None
    try:
        method.load_state_dict(payload["state"], restore_training=restore_training)
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError, IndexError) as error:
        detail = f"no entry {error}" if isinstance(error, KeyError) else " ".join(str(error).split())[:300]
        raise BenchError(f"checkpoint {path}: its weights do not match method {name!r} ({detail})") from None
    meta = {k: v for k, v in payload.items() if k != "state"}
    return method, meta


def _short(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


def _file_kind(path: Path) -> str:
    """What a file looks like from its first bytes: "zip" / "pickle" (PyTorch's formats) or a description."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        return "an empty file (0 bytes)"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x80"):
        return "pickle"
    for magic, kind in ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
                        (b"%PDF", "a PDF document")):
        if head.startswith(magic):
            return kind
    text = head.decode("utf-8", "ignore")  # "ignore": the 64 bytes may end inside a character
    if len(text.encode()) >= len(head) - 3 and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file (starting {text[:24]!r})"
    return "binary data of an unknown kind"


CHECKPOINT_NAME = "checkpoint.pt"
SHOWN_CANDIDATES = 5


def find_checkpoints(folder: Path) -> list[Path]:
    """Every ``checkpoint.pt`` below ``folder``, sorted. Hidden entries are never searched: a ``.seed0.replacement/``
    is an unfinished ``--force`` replacement (its checkpoint is not the run's), the rest are locks and temporary
    files. Symlinked folders are not followed (no loops)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if CHECKPOINT_NAME in files and Path(root, CHECKPOINT_NAME).is_file():
            found.append(Path(root, CHECKPOINT_NAME))
    return sorted(found)


def resolve_checkpoint(path: Path) -> Path:
    """The checkpoint file ``bench colorize --checkpoint`` means: ``path`` itself unless it is a folder (a run
    folder ``runs/flowers/pix2pix/64px-60s-<hash>/seed0``, its config or method folder, ...), else the one
    ``checkpoint.pt`` below it (:func:`find_checkpoints`). None, or several, is a one-line error; several are
    listed (the first few, and how many) with how to choose. A path that is not a folder is returned as it is,
    for :func:`load_checkpoint` to check."""
    path = Path(path)
    if not path.is_dir():
        return path
    found = find_checkpoints(path)
    if len(found) == 1:
        return found[0]
    if not found:
        raise BenchError(f"checkpoint {path} is a folder with no {CHECKPOINT_NAME} below it (hidden folders left "
                         f"out); expected {EXPECTED}, or a folder holding one")
    shown = ", ".join(str(p) for p in found[:SHOWN_CANDIDATES]) + (", …" if len(found) > SHOWN_CANDIDATES else "")
    raise BenchError(f"checkpoint {path}: {len(found)} {CHECKPOINT_NAME} files below this folder ({shown}); pass one "
                     f"of them, or a folder holding only one (a run's <size>px-<budget>-<hash>/seed<k> folder)")


def _folder_hint(path: Path) -> str:
    found = find_checkpoints(path)
    if not found:
        return f"no {CHECKPOINT_NAME} below it"
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return f"did you mean {found[0]}{more}?"


def _read_payload(path: Path, device):
    if path.is_dir():
        raise BenchError(f"checkpoint {path} is a folder; expected {EXPECTED} ({_folder_hint(path)})")
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist; expected {EXPECTED}")
    kind = _file_kind(path)
    if kind not in ("zip", "pickle"):
        raise BenchError(f"checkpoint {path} is {kind}, not a PyTorch file; expected {EXPECTED}")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise BenchError(f"checkpoint {path} is a damaged PyTorch file ({error}); expected {EXPECTED}") from None
        refused = next((line.strip() for line in str(error).splitlines() if "Unsupported" in line), "")
        raise BenchError(f"checkpoint {path} holds Python objects, not only tensors and plain data, and was refused "
                         f"without running them (weights_only=True{': ' + refused if refused else ''}); "
                         f"expected {EXPECTED}") from None
    except Exception as error:
        detail = str(error).split(". ")[0].splitlines()[0] if str(error) else type(error).__name__
        raise BenchError(f"checkpoint {path} is a truncated or damaged PyTorch file ({detail}); "
                         f"expected {EXPECTED}") from None


def _check_metadata(path: Path, payload) -> None:
    if not isinstance(payload, dict):
        raise BenchError(f"checkpoint {path} is a PyTorch file holding {_short(payload)}, not a colorbench "
                         f"checkpoint; expected {EXPECTED}")
    found = payload.get("format")
    if found != FORMAT:
        if isinstance(found, str) and found.startswith("colorbench-checkpoint-"):
            what = f"is in format {found!r}, which this colorbench cannot read"
        else:
            keys = ", ".join(repr(k) for k in list(payload)[:5]) + (", …" if len(payload) > 5 else "")
            what = (f"is a PyTorch file from another tool (a dict with keys {keys or 'none'}), "
                    "not a colorbench checkpoint")
        raise BenchError(f"checkpoint {path} {what}; expected {EXPECTED}")
    missing = [name for name in FIELDS if name not in payload]
    if missing:
        raise BenchError(f"checkpoint {path} lacks {', '.join(missing)}; a {FORMAT} checkpoint holds "
                         f"{', '.join(FIELDS)}")
    for name, (valid, expected) in FIELDS.items():
        if not valid(payload[name]):
            raise BenchError(f"checkpoint {path}: {name} is {_short(payload[name])}, expected {expected}")
    check_sealed(payload, f"checkpoint {path}", "its weights are not used")
