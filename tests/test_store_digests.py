"""Every stored artefact is verified before use (issue 17, item 2): a few garbled bytes inside a decode-cache
entry, a feature cache, ``checkpoint.pt`` or ``resume.pt`` are found on load, said in one line, and never
used (caches are rebuilt; a checkpoint is refused; a resume state suggests ``--fresh``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import cache_path, load_split
from bench.engine.checkpoint import load_checkpoint
from bench.errors import BenchError
from bench.metrics.features import PairedFeatures
from bench.engine.context import make_dataset
from bench.store.digest import content_digest, seal, verify
from tests.helpers import find_runs

TINY = ("--dataset", "sample", "--size", "32", "--budget", "3steps", "--device", "cpu", "--metrics", "psnr",
        "--seeds", "1", "-o", "ngf=4")


def garble(path, tensor: torch.Tensor, count: int = 32) -> None:
    """Flip ``count`` bytes of ``tensor``'s data where it lies in the file (torch stores it uncompressed)."""
    data = bytearray(path.read_bytes())
    raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    start = data.find(raw[:4096])
    assert start >= 0, "the tensor's bytes are not in the file"
    middle = start + min(len(raw), 4096) // 2
    for k in range(count):
        data[middle + k] ^= 0x5A
    path.write_bytes(bytes(data))


def test_the_digest_sees_every_byte_dtype_shape_and_value():
    state = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(2, dtype=torch.bfloat16),
             "step": 7, "name": "x", "rng": (3, (1, 2), None), "empty": torch.zeros(0)}
    base = content_digest(state)
    assert content_digest({k: state[k] for k in reversed(list(state))}) == base  # key order is not content
    changed = dict(state, w=state["w"].clone())
    changed["w"].view(torch.uint8).reshape(-1)[5] ^= 1  # one bit of one weight
    for other in (changed, dict(state, w=state["w"].reshape(4, 3)), dict(state, w=state["w"].double()),
                  dict(state, step=8), dict(state, rng=(3, [1, 2], None)), dict(state, b=torch.ones(2))):
        assert content_digest(other) != base
    sealed = seal(state)
    assert verify(sealed) is None and verify(seal(sealed)) is None
    assert "damaged" in verify(sealed | {"step": 9})
    assert "no content digest" in verify(state)


def test_a_damaged_decode_cache_entry_is_said_and_decoded_again(tmp_path):
    dataset = make_dataset("sample", {}, None)
    fresh = load_split(dataset, "test", 32)
    path = cache_path(dataset, "test", 32)
    assert path.is_file()
    garble(path, fresh.images)
    said = []
    again = load_split(dataset, "test", 32, log=said.append)
    assert torch.equal(again.images, fresh.images)  # decoded afresh, not the garbled pixels
    assert any("content does not match its digest" in line and "decoding afresh" in line for line in said)
    said.clear()
    assert torch.equal(load_split(dataset, "test", 32, log=said.append).images, fresh.images)
    assert not said  # rewritten whole: the next load uses the cache


def test_a_damaged_feature_cache_is_said_and_computed_again(tmp_path, capsys):
    features = PairedFeatures.__new__(PairedFeatures)
    features.cache_path = tmp_path / "features.pt"
    stored = torch.randn(50, 64)
    features._write_cache(stored, "fp")
    assert torch.equal(features._read_cache()["features"], stored)
    garble(features.cache_path, stored)
    assert features._read_cache() is None  # recomputed by the pass, then rewritten
    assert "content does not match its digest" in capsys.readouterr().err


def test_a_damaged_checkpoint_is_refused_by_colorize(run_cli, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 48, 3), 120, dtype=np.uint8)).save(photo)
    assert run_cli("run", "--methods", "pix2pix", *TINY, "-o", "ndf=4", "--out", tmp_path / "runs")[0] == 0
    (folder,) = find_runs(tmp_path / "runs", "sample", "pix2pix", 0)
    checkpoint = folder / "checkpoint.pt"
    method, _ = load_checkpoint(checkpoint)
    garble(checkpoint, max(method.nets["G"].state_dict().values(), key=lambda t: t.numel()))
    with pytest.raises(BenchError, match="is damaged: its content does not match its digest"):
        load_checkpoint(checkpoint)
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, photo, "--out", tmp_path / "out")
    assert code == 2 and str(checkpoint) in err and "damaged" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_damaged_resume_state_fails_its_run_and_suggests_fresh(run_cli, tmp_path, monkeypatch):
    from bench.engine import execute

    out = tmp_path / "runs"
    score = execute.score_method
    monkeypatch.setattr(execute, "RESUME_BEFORE_SCORING_S", 0.0)  # a few steps stand for a long training

    def killed(*args, **kwargs):  # dies while scoring: the trained state is in resume.pt (item 6)
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "score_method", killed)
    assert run_cli("run", "--methods", "unet-l2", *TINY, "--out", out)[0] != 0
    monkeypatch.setattr(execute, "score_method", score)
    (folder,) = find_runs(out, "sample", "unet-l2", 0)
    resume = torch.load(folder / "resume.pt", weights_only=True)
    garble(folder / "resume.pt", max(resume["method"]["nets"]["G"].values(), key=lambda t: t.numel()))
    code, stdout, _ = run_cli("run", "--methods", "unet-l2", *TINY, "--out", out, "--json")
    (printed,) = json.loads(stdout)
    assert code == 3 and printed["status"] == "failed"
    assert "resume.pt is damaged" in printed["error"] and "--fresh" in printed["error"]
    code, stdout, _ = run_cli("run", "--methods", "unet-l2", *TINY, "--out", out, "--json", "--fresh")
    assert code == 0 and json.loads(stdout)[0]["status"] == "ok"
