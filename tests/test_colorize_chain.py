"""Tools that chain: `bench run` -> `bench colorize --checkpoint <method folder>` -> `bench score` on its output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench import registry
from bench.engine.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from bench.errors import BenchError
from bench.evaluation.folders import image_files, match_key
from tests.helpers import write_photos

SIZE = 32
TINY_RUN = ("--methods", "unet-l2", "--dataset", "sample", "--size", SIZE, "--seeds", "1", "--device", "cpu",
            "--metrics", "psnr", "-o", "ngf=4", "--samples", "1",
            # 14 train and 7 test crops instead of 168 and 56: the chain is under test, not the training.
            "--dataset-option", "train_per_photo=2", "--dataset-option", "test_per_photo=1")


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> Path:
    """A small baseline checkpoint through the real save path, to copy into run-folder layouts."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(path, registry.create_method("baseline", size=SIZE), "baseline", "sample", steps=2)
    return path


def place(checkpoint: Path, *folders: Path) -> list[Path]:
    """Copies of ``checkpoint`` as ``<folder>/checkpoint.pt``, as `bench run` leaves them."""
    placed = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        placed.append(Path(shutil.copyfile(checkpoint, folder / "checkpoint.pt")))
    return placed


def test_run_colorize_score_chain(run_cli, tmp_path):
    runs = tmp_path / "runs"
    code, _, err = run_cli("run", *TINY_RUN, "--budget", "2steps", "--out", runs)
    assert code == 0, err
    (trained,) = runs.glob("sample/unet-l2/32px-2steps-*/seed0/checkpoint.pt")

    photos = tmp_path / "photos"
    names = ["image_0075.jpg", "image_0076.jpg", "b.png", "c.jpeg", "d.PNG"]
    write_photos(photos, names)
    elsewhere = tmp_path / "elsewhere"  # the same file name from another folder: colorize numbers its output
    write_photos(elsewhere, ["b.png"])
    out = tmp_path / "out"
    code, stdout, err = run_cli("colorize", "--checkpoint", runs / "sample" / "unet-l2", photos, elsewhere / "b.png",
                                "--out", out, "--device", "cpu", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["checkpoint"] == str(trained) and report["method"] == "unet-l2"
    assert f"checkpoint: {trained} (the only checkpoint.pt below {runs / 'sample' / 'unet-l2'})" in err
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.png" for n in names] + ["b.png-2.png"])

    code, stdout, err = run_cli("score", "--pred", out, "--target", photos, "--metrics", "psnr,ssim",
                                "--device", "cpu", "--json")
    assert code == 0, err
    scored = json.loads(stdout)
    assert scored["n_images"] == len(names) and scored["unmatched"] == 1  # b.png-2.png: another photo's output
    assert sorted(scored["per_image"]["names"]) == sorted(match_key(n) for n in names)
    for metric in ("psnr", "ssim"):
        assert len(scored["per_image"][metric]) == len(names) and np.isfinite(scored["per_image"][metric]).all()
    # b.png is paired with the output of photos/b.png, not of elsewhere/b.png (the same picture, a different seed).
    b = scored["per_image"]["names"].index("b")
    pred, truth = (np.asarray(Image.open(p).convert("RGB"), np.float64) for p in (out / "b.png.png", photos / "b.png"))
    expected = 10 * np.log10(255**2 / np.mean((pred - truth) ** 2))
    assert scored["per_image"]["psnr"][b] == pytest.approx(expected, abs=1e-3)


def test_match_keys():
    assert [match_key(n) for n in ("photo.jpg.png", "photo.jpg", "photo.png", "Photo.JPG.PNG", "a.b.png")] == [
        "photo", "photo", "photo", "Photo", "a.b"]
    assert match_key("photo.jpg-2.png") == "photo.jpg-2"  # a numbered colorize output keeps its number
    assert match_key("notes.txt") is None and match_key("photo.png.txt") is None and match_key(".png") is None


def test_no_names_in_common_shows_both_sides(run_cli, tmp_path):
    pred, target = tmp_path / "pred", tmp_path / "target"
    write_photos(pred, ["p0.png", "p1.png", "p2.jpg.png", "p3.png"])
    write_photos(target, ["t0.png", "t1.jpg"])
    (target / "notes.txt").write_text("not an image")
    code, _, err = run_cli("score", "--pred", pred, "--target", target, "--metrics", "psnr", "--device", "cpu")
    assert code == 2
    assert (f"no file names in common between {pred} (4 images, e.g. p0.png, p1.png, p2.jpg.png, …) and "
            f"{target} (2 images, e.g. t0.png, t1.jpg)") in err
    assert err.count("\n") == 1 and "Traceback" not in err

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli("score", "--pred", empty, "--target", target, "--metrics", "psnr", "--device", "cpu")
    assert code == 2 and f"between {empty} (no images) and {target} (2 images" in err


def test_two_files_with_one_key_are_an_error(tmp_path):
    write_photos(tmp_path, ["x.png", "x.jpg.png", "y.png"])
    with pytest.raises(BenchError, match=r"x\.jpg\.png and x\.png both match 'x'") as caught:
        image_files(tmp_path)
    assert "\n" not in str(caught.value)


def test_method_folder_with_two_runs_lists_the_candidates(run_cli, checkpoint_file, tmp_path):
    method = tmp_path / "runs" / "sample" / "baseline"
    short, long = place(checkpoint_file, method / "32px-2steps-5533a0189d" / "seed0",
                        method / "32px-3steps-3781dde83a" / "seed0")
    write_photos(tmp_path / "photos", ["a.png"])
    code, _, err = run_cli("colorize", "--checkpoint", method, tmp_path / "photos", "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1
    assert f"checkpoint {method}: 2 checkpoint.pt files below this folder ({short}, {long}); pass one of them" in err
    assert not (tmp_path / "out").exists()
    code, stdout, err = run_cli("colorize", "--checkpoint", long.parent, tmp_path / "photos", "--out",
                                tmp_path / "out", "--json")
    assert code == 0 and json.loads(stdout)["checkpoint"] == str(long), err

    many = place(checkpoint_file, *(method / "32px-3steps-3781dde83a" / f"seed{k}" for k in range(1, 7)))
    with pytest.raises(BenchError, match=r"8 checkpoint\.pt files below this folder \(.*seed3/checkpoint\.pt, …\)") \
            as caught:
        resolve_checkpoint(method)
    assert str(many[2]) in str(caught.value) and str(many[3]) not in str(caught.value)  # the first 5 are shown


def test_hidden_replacement_checkpoint_is_never_picked(run_cli, checkpoint_file, tmp_path):
    config = tmp_path / "runs" / "sample" / "baseline" / "32px-2steps-5533a0189d"
    (finished,) = place(checkpoint_file, config / "seed0")
    place(checkpoint_file, config / ".seed0.replacement", config / ".hidden" / "seed1")  # unfinished --force
    (config / ".seed0.lock").write_text("")
    for folder in (config.parent.parent.parent, config.parent, config):
        assert resolve_checkpoint(folder) == finished
    write_photos(tmp_path / "photos", ["a.png"])
    code, stdout, err = run_cli("colorize", "--checkpoint", config.parent, tmp_path / "photos", "--out",
                                tmp_path / "out", "--json")
    assert code == 0 and json.loads(stdout)["checkpoint"] == str(finished), err

    finished.unlink()  # only the replacement is left: it is still not taken
    with pytest.raises(BenchError, match=r"is a folder with no checkpoint\.pt below it \(hidden folders left out\)"):
        resolve_checkpoint(config.parent)
    with pytest.raises(BenchError, match="no checkpoint.pt below it"):  # load_checkpoint's hint agrees
        load_checkpoint(config)
    replacement = config / ".seed0.replacement"
    assert resolve_checkpoint(replacement) == replacement / "checkpoint.pt"  # named explicitly, it is the user's pick
