"""checkpoint.pt holds what colorizing needs (the generator and the config), not the training state (issue 20)."""

from __future__ import annotations

import torch

from bench import registry
from bench.engine.checkpoint import load_checkpoint, save_checkpoint
from bench.method import Batch, training_step


def test_a_checkpoint_keeps_the_generator_only_and_colorizes_the_same(tmp_path):
    torch.manual_seed(0)
    method = registry.create_method("pix2pix", size=32, ngf=8, ndf=8, test_mode="eval")
    method.train_mode()
    training_step(method, Batch(torch.rand(2, 1, 32, 32), torch.rand(2, 2, 32, 32)), 0.0)  # the optimisers have moments now
    save_checkpoint(tmp_path / "checkpoint.pt", method, "pix2pix", "sample", 1)
    stored = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert set(stored["state"]) == {"nets"} and set(stored["state"]["nets"]) == {"G"}
    assert stored["options"]["ngf"] == 8 and stored["size"] == 32
    full = sum(t.numel() for t in torch.utils._pytree.tree_leaves(method.state_dict()) if isinstance(t, torch.Tensor))
    kept = sum(t.numel() for t in stored["state"]["nets"]["G"].values())
    assert kept < full / 3  # no D, no Adam moments
    back, _ = load_checkpoint(tmp_path / "checkpoint.pt")
    method.eval_mode(), back.eval_mode()
    L = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(back.colorize(L), method.colorize(L))


def test_a_plugin_without_inference_nets_keeps_every_network_but_no_optimiser(tmp_path):
    method = registry.create_method("baseline", size=32, width=4)
    assert method.inference_nets is None
    save_checkpoint(tmp_path / "checkpoint.pt", method, "baseline", "sample", 0)
    stored = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state"]
    assert set(stored) == {"nets"} and set(stored["nets"]) == set(method.nets)
