"""pix2pix-resnet18's ImageNet weights: refused clearly when missing or wrong, loaded when present."""

import dataclasses

import pytest
import torch
import torchvision

from bench import registry, weights
from bench.api import Batch, BenchError, Unavailable, training_step
from bench.engine.checkpoint import load_checkpoint, save_checkpoint
from bench.weights import WeightStore, sha256_of

FILENAME = "resnet18-f37072fd.pth"


def build(store, **options):
    torch.manual_seed(0)
    return registry.create_method("pix2pix-resnet18", size=32, weights=store, **options)


@pytest.fixture
def fake_imagenet_file(tmp_path, monkeypatch):
    """A torchvision-format resnet18 state dict of random tensors, accepted as the real file: the
    registry entry's hash is set to this file's sha256 (the real one starts with f37072fd)."""
    torch.manual_seed(42)
    state = {k: (torch.rand_like(v) + 0.5 if k.endswith("running_var") else torch.randn_like(v))
             if v.is_floating_point() else v for k, v in torchvision.models.resnet18().state_dict().items()}
    path = tmp_path / FILENAME
    torch.save(state, path)
    entry = weights.KNOWN_WEIGHTS["resnet18-imagenet"]
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, "resnet18-imagenet", dataclasses.replace(entry, sha256=sha256_of(path)))
    return path, state


def test_missing_weights_refuse_with_where_to_put_them(tmp_path):
    store = WeightStore(tmp_path)  # empty, and the tests' torch hub cache is empty and offline
    with pytest.raises(Unavailable) as info:
        build(store)
    message = str(info.value)
    assert message.startswith(f"ImageNet ResNet18 weights unavailable (put {FILENAME} at {tmp_path}")
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    # the scratch variant never needs them
    registry.create_method("pix2pix-resnet18-scratch", size=32, weights=store)


def test_a_file_with_the_wrong_hash_is_refused(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / FILENAME)
    with pytest.raises(Unavailable, match="refused .*sha256 does not match f37072fd"):
        build(WeightStore(tmp_path))


def test_local_weights_land_in_the_encoder(fake_imagenet_file):
    path, state = fake_imagenet_file
    method = build(WeightStore(path.parent))
    encoder = method.G.encoder.state_dict()
    assert set(encoder) == {k for k in state if not k.startswith("fc.")}
    for key, value in encoder.items():
        # the 1-channel stem holds the RGB kernels summed (fastai's create_body(n_in=1))
        expected = state[key].sum(1, keepdim=True) if key == "conv1.weight" else state[key]
        assert torch.equal(value, expected), key
    scratch = registry.create_method("pix2pix-resnet18-scratch", size=32, weights=WeightStore(path.parent))
    assert not torch.equal(scratch.G.encoder.conv1.weight, state["conv1.weight"])
    L = torch.rand(2, 1, 32, 32) * 2 - 1
    losses = training_step(method, Batch(L, torch.zeros(2, 2, 32, 32)), 0.0)
    assert set(losses) == {"G_L1"}


def test_a_state_dict_of_the_wrong_network_is_refused(tmp_path, monkeypatch):
    path = tmp_path / FILENAME
    torch.save(torchvision.models.resnet34().state_dict(), path)
    entry = weights.KNOWN_WEIGHTS["resnet18-imagenet"]
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, "resnet18-imagenet", dataclasses.replace(entry, sha256=sha256_of(path)))
    with pytest.raises(BenchError, match=f"{FILENAME}: not a torchvision resnet18 state dict \\(unexpected: layer1.2"):
        build(WeightStore(tmp_path))


def test_checkpoints_restore_without_the_weight_file(fake_imagenet_file, tmp_path):
    path, _ = fake_imagenet_file
    method = build(WeightStore(path.parent))
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(checkpoint, method, "pix2pix-resnet18", "sample", steps=0)
    path.unlink()  # the checkpoint alone must suffice
    restored, meta = load_checkpoint(checkpoint)
    assert meta["method"] == "pix2pix-resnet18"
    restored.eval_mode()
    method.eval_mode()
    L = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        ab = restored.colorize(L)
        assert torch.isfinite(ab).all() and torch.equal(ab, method.colorize(L))


def test_never_runs_from_random_init_under_the_pretrained_name():
    method = registry.create_method("pix2pix-resnet18", size=32)  # no weight store: expects a checkpoint
    L = torch.zeros(1, 1, 32, 32)
    with pytest.raises(BenchError, match="without its ImageNet weights"):
        training_step(method, Batch(L, torch.zeros(1, 2, 32, 32)), 0.0)
    with pytest.raises(BenchError, match="without its ImageNet weights"):
        method.colorize(L)
