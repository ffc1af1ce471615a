"""Test-time randomness is the method's own: seeded by (run seed, image index), never the process's history."""

from __future__ import annotations

import json

import pytest
import torch

from bench import registry
from bench.evaluation import test_split as scoring
from bench.evaluation.test_time import colorize_seeded


@pytest.fixture(scope="module")
def pix2pix():
    torch.manual_seed(0)
    method = registry.create_method("pix2pix", size=32, ngf=8, ndf=8)
    method.eval_mode()
    return method


def test_dropout_at_test_time_draws_from_the_run_seed_and_image_index(pix2pix):
    assert pix2pix.random_at_test_time and not registry.create_method("baseline", size=32).random_at_test_time
    assert not registry.create_method("pix2pix", size=32, ngf=8, ndf=8, test_mode="eval").random_at_test_time
    L = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        first = colorize_seeded(pix2pix, L, run_seed=3, first_index=0)
        state = torch.get_rng_state()
        torch.rand(1000)  # the process's history changes ...
        assert torch.equal(colorize_seeded(pix2pix, L, run_seed=3, first_index=0), first)  # ... the output does not
        torch.rand(1)
        assert not torch.equal(torch.get_rng_state(), state)
        after = torch.get_rng_state()
        split = torch.cat([colorize_seeded(pix2pix, L[:1], run_seed=3, first_index=0),
                           colorize_seeded(pix2pix, L[1:], run_seed=3, first_index=1)])
        assert torch.equal(torch.get_rng_state(), after)  # the caller's generator is left as it was
        assert torch.equal(split, first)  # any evaluation batch: the same image, the same draw
        assert not torch.equal(colorize_seeded(pix2pix, L, run_seed=4, first_index=0), first)  # another run's draw
        assert not torch.equal(first[0], first[1])  # dropout is still random between images


def test_scores_do_not_depend_on_what_ran_before(run_cli, tmp_path, monkeypatch):
    """Building the metrics first consumes the global generator (LPIPS's random trunk did): the same run
    must score the same either way."""
    args = ("run", "--methods", "unet-l2", "--dataset", "sample", "--size", "32", "--budget", "2steps",
            "--device", "cpu", "--metrics", "psnr", "--seeds", "1", "-o", "ngf=8", "--json")
    code, plain, _ = run_cli(*args, "--out", tmp_path / "a")
    assert code == 0
    build = scoring.build_metrics

    def consuming(*a, **k):
        torch.rand(977)
        return build(*a, **k)

    monkeypatch.setattr(scoring, "build_metrics", consuming)
    code, consumed, _ = run_cli(*args, "--out", tmp_path / "b")
    assert code == 0
    first, second = json.loads(plain)[0], json.loads(consumed)[0]
    assert first["status"] == second["status"] == "ok"
    assert first["metrics"]["psnr"] == second["metrics"]["psnr"]


def test_each_test_time_draw_is_its_own_and_draw_0_is_the_default(pix2pix):
    L = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        default = colorize_seeded(pix2pix, L, run_seed=3, first_index=0)
        assert torch.equal(colorize_seeded(pix2pix, L, run_seed=3, first_index=0, draw=0), default)
        second = colorize_seeded(pix2pix, L, run_seed=3, first_index=0, draw=1)
        assert not torch.equal(second, default)
        assert torch.equal(colorize_seeded(pix2pix, L, run_seed=3, first_index=0, draw=1), second)


def test_test_draws_record_the_spread_and_keep_draw_0_as_the_score(run_cli, tmp_path):
    args = ("run", "--methods", "unet-l2,baseline", "--dataset", "sample", "--size", "32", "--budget", "2steps",
            "--device", "cpu", "--metrics", "psnr,ssim", "--seeds", "1", "-o", "unet-l2.ngf=8", "--json")
    code, one, _ = run_cli(*args, "--out", tmp_path / "one")
    assert code == 0
    code, three, _ = run_cli(*args, "--out", tmp_path / "three", "--test-draws", "3")
    assert code == 0
    one, three = {r["method"]: r for r in json.loads(one)}, {r["method"]: r for r in json.loads(three)}
    drawn = three["unet-l2"]["test_time"]
    assert drawn["random"] and drawn["draws"] == 3
    assert len(drawn["values"]["psnr"]) == 3 and drawn["values"]["psnr"][0] == three["unet-l2"]["metrics"]["psnr"]
    assert len(set(drawn["values"]["psnr"])) == 3 and drawn["spread"]["psnr"] > 0  # dropout: the draws differ
    assert three["unet-l2"]["metrics"] == one["unet-l2"]["metrics"]  # the ranked score is draw 0's either way
    assert three["baseline"]["test_time"] == {"random": False, "draws": 1}  # nothing to draw
    assert one["unet-l2"]["test_time"] == {"random": True, "draws": 1}
    code, _, err = run_cli(*args, "--out", tmp_path / "three", "--test-draws", "0")
    assert code == 2 and "--test-draws 0: from 1 to 100" in err


def test_the_board_says_which_methods_are_random_at_test_time(run_cli, tmp_path):
    args = ("run", "--methods", "unet-l2,baseline", "--dataset", "sample", "--size", "32", "--budget", "2steps",
            "--device", "cpu", "--metrics", "psnr", "--seeds", "1", "-o", "unet-l2.ngf=8", "--test-draws", "2")
    assert run_cli(*args, "--out", tmp_path / "runs")[0] == 0
    assert run_cli("report", "--runs", tmp_path / "runs", "--out", tmp_path / "site")[0] == 0
    page = (tmp_path / "site" / "index.html").read_text()
    note = page.split('class="rank-note test-time-note">')[1].split("</p>")[0]
    assert "unet-l2 (ngf=8) (2 draws; psnr varies by" in note and "baseline" not in note
