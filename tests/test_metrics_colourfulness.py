"""Colourfulness (Hasler & Suesstrunk 2003) and its gap to the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.color import float_to_uint8, lab_to_rgb, rgb_to_lab
from bench.evaluate import build_metrics, evaluate
from bench.metric import MetricContext
from bench.metrics.colourfulness import colourfulness

CPU = torch.device("cpu")


def numpy_colourfulness(image_hwc_255: np.ndarray) -> float:
    """The paper's M^(3), written out on one H x W x 3 image in 0-255."""
    r, g, b = (image_hwc_255[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(np.std(rg) ** 2 + np.std(yb) ** 2) + 0.3 * np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2))


def test_formula_equals_direct_numpy():
    from skimage import data

    g = torch.Generator().manual_seed(0)
    photo = torch.from_numpy(data.coffee()[:96, :128].copy()).permute(2, 0, 1)[None].float() / 255
    images = torch.cat([torch.rand(3, 3, 96, 128, generator=g), photo])
    ours = colourfulness(images).numpy()
    expected = [numpy_colourfulness(im.permute(1, 2, 0).double().numpy() * 255) for im in images]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_known_values():
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0  # rg = 255, yb = 127.5 everywhere, no spread
    assert colourfulness(red).item() == pytest.approx(0.3 * np.hypot(255, 127.5))
    gray = torch.rand(2, 1, 8, 8).expand(2, 3, 8, 8)
    assert torch.all(colourfulness(gray) == 0)


def photos(size=96) -> torch.Tensor:
    from skimage import data

    arrays = [data.astronaut(), data.coffee(), data.chelsea()]
    return torch.cat([
        F.interpolate(torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255, size=(size, size), mode="area")
        for a in arrays
    ])


def recolour(truth: torch.Tensor, ab_of) -> torch.Tensor:
    """The truth's lightness with other chroma -- what a colorization method outputs."""
    lab = rgb_to_lab(truth)
    return lab_to_rgb(torch.cat([lab[:, :1], ab_of(lab[:, 1:])], dim=1))


def rotate_hue(ab: torch.Tensor, degrees: float) -> torch.Tensor:
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    return torch.stack([c * ab[:, 0] - s * ab[:, 1], s * ab[:, 0] + c * ab[:, 1]], dim=1)


def score(pred: torch.Tensor, truth: torch.Tensor) -> dict:
    context = MetricContext(device=CPU)
    metrics, unavailable = build_metrics(["psnr", "colourfulness", "delta_colourfulness"], context)
    assert not unavailable
    return evaluate([(float_to_uint8(pred), float_to_uint8(truth))], metrics, len(pred))


def test_sepia_and_green_cast_show_in_delta_colourfulness_while_psnr_rewards_them():
    truth = photos()
    candidates = {
        # A vivid output whose hues are 60 degrees off: wrong colours, right amount of colour.
        "vivid_wrong_hue": recolour(truth, lambda ab: rotate_hue(ab, 60)),
        # Sepia: one warm brown tone everywhere (the classic low-risk output).
        "sepia": recolour(truth, lambda ab: torch.tensor([6.0, 18.0]).view(1, 2, 1, 1).expand_as(ab)),
        # Green cast: the true colours, faded and pushed towards green.
        "green_cast": recolour(truth, lambda ab: 0.3 * ab + torch.tensor([-12.0, 10.0]).view(1, 2, 1, 1)),
    }
    results = {name: score(pred, truth) for name, pred in candidates.items()}
    psnr = {name: r["psnr"]["value"] for name, r in results.items()}
    delta = {name: r["delta_colourfulness"]["value"] for name, r in results.items()}
    for failure in ("sepia", "green_cast"):
        assert psnr[failure] > psnr["vivid_wrong_hue"]  # PSNR prefers the failure ...
        assert delta[failure] > 2 * delta["vivid_wrong_hue"]  # ... the colourfulness gap flags it
        assert results[failure]["delta_colourfulness"]["signed_gap"] < 0  # less colourful than the truth


def test_delta_colourfulness_result_fields():
    truth = photos(64)
    pred = recolour(truth, lambda ab: 0.5 * ab)
    result = score(pred, truth)
    cf, delta = result["colourfulness"], result["delta_colourfulness"]
    truth_u8, pred_u8 = float_to_uint8(truth).float() / 255, float_to_uint8(pred).float() / 255
    gaps = (colourfulness(pred_u8) - colourfulness(truth_u8)).numpy()
    np.testing.assert_allclose(delta["per_image"], gaps, rtol=1e-12)
    assert delta["value"] == pytest.approx(abs(gaps.mean()))
    assert delta["signed_gap"] == pytest.approx(gaps.mean())
    assert delta["pred_colourfulness"] == pytest.approx(cf["value"])
    assert delta["target_colourfulness"] == pytest.approx(colourfulness(truth_u8).mean().item())
    assert delta["ci95"][0] <= delta["value"] <= delta["ci95"][1] and delta["n"] == 3
    assert delta["settings"] == "delta-colourfulness-abs-mean-gap-hasler-suesstrunk-m3-rgb255"
    assert cf["higher_is_better"] is None and delta["higher_is_better"] is False  # descriptive: no "best"
