"""Colourfulness (Hasler & Suesstrunk 2003), its gap to the ground truth, and the ab-histogram distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.color import float_to_uint8, lab_to_rgb, rgb_to_lab
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.metric import MetricContext
from bench.stats import bootstrap_ci
from bench.metrics.ab_histogram import ABHistSWD, bin_centres
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


def score(pred: torch.Tensor, truth: torch.Tensor, names=("psnr", "colourfulness", "delta_colourfulness"),
          batch: int | None = None) -> dict:
    context = MetricContext(device=CPU)
    metrics, unavailable = build_metrics(list(names), context)
    assert not unavailable
    pred, truth = float_to_uint8(pred), float_to_uint8(truth)
    batch = batch or len(pred)
    batches = [(pred[i : i + batch], truth[i : i + batch]) for i in range(0, len(pred), batch)]
    return evaluate(batches, metrics, len(pred))


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
    signed_gaps = (colourfulness(pred_u8) - colourfulness(truth_u8)).numpy()
    gaps = np.abs(signed_gaps)
    np.testing.assert_allclose(delta["per_image"], gaps, rtol=1e-12)  # per image: the absolute gap ...
    assert delta["value"] == pytest.approx(gaps.mean())  # ... and the value is their mean, like any per-image metric
    assert delta["ci95"] == bootstrap_ci(delta["per_image"])  # the engine's interval for per-image metrics
    assert delta["signed_gap"] == pytest.approx(signed_gaps.mean())  # the papers' set-level gap, descriptive
    assert delta["abs_mean_gap"] == pytest.approx(abs(signed_gaps.mean()))
    assert delta["pred_colourfulness"] == pytest.approx(cf["value"])
    assert delta["target_colourfulness"] == pytest.approx(colourfulness(truth_u8).mean().item())
    assert delta["ci95"][0] <= delta["value"] <= delta["ci95"][1] and delta["n"] == 3
    assert delta["settings"] == "delta-colourfulness-mean-abs-gap-per-image-hasler-suesstrunk-m3-rgb255"
    assert cf["higher_is_better"] is None and delta["higher_is_better"] is False  # descriptive: no "best"


def test_delta_colourfulness_per_image_values_point_the_way_the_value_does():
    """The old per-image values were signed gaps: a duller method had a *lower* mean, so the paired
    verdicts called it better (and every method worse than the gray input). Absolute gaps: no."""
    truth = photos(48)
    candidates = {"gray": recolour(truth, torch.zeros_like), "x0.5": recolour(truth, lambda ab: 0.5 * ab),
                  "x1.25": recolour(truth, lambda ab: 1.25 * ab), "truth": truth}
    delta = {name: score(pred, truth, ["delta_colourfulness"])["delta_colourfulness"] for name, pred in candidates.items()}
    order = sorted(delta, key=lambda name: delta[name]["value"])
    assert order == ["truth", "x1.25", "x0.5", "gray"]
    per_image = {name: np.asarray(d["per_image"]) for name, d in delta.items()}
    for better, worse in zip(order, order[1:]):  # the mean per-image difference agrees with the values
        assert (per_image[better] - per_image[worse]).mean() < 0
    assert delta["truth"]["value"] == 0.0
    gray = delta["gray"]  # every gray image is duller than its truth: the mean |gap| is the gap of the means
    assert gray["value"] == pytest.approx(gray["target_colourfulness"] - gray["pred_colourfulness"])
    assert gray["pred_colourfulness"] < 0.5 and gray["signed_gap"] == pytest.approx(-gray["value"])


# -- ab_hist_swd --------------------------------------------------------------------------------
def numpy_ab_hist_swd(pred: torch.Tensor, truth: torch.Tensor, directions: int = 64) -> float:
    """The formula written out: scikit-image Lab, numpy 2-D histograms, scipy's 1-D Wasserstein."""
    from scipy.stats import wasserstein_distance
    from skimage.color import rgb2lab

    edges = np.arange(-115.0, 116.0, 10.0)  # 23 bins of 10, centred on -110 ... 110

    def distribution(images):
        histograms = []
        for image in float_to_uint8(images).permute(0, 2, 3, 1).numpy():
            lab = rgb2lab(image.astype(np.float64) / 255)
            h, _, _ = np.histogram2d(lab[..., 1].ravel(), lab[..., 2].ravel(), bins=[edges, edges])
            histograms.append(h.ravel() / h.sum())
        return np.mean(histograms, axis=0)

    p, q, centres = distribution(pred), distribution(truth), bin_centres()
    slices = []
    for t in np.pi * np.arange(directions) / directions:
        projected = centres @ np.array([np.cos(t), np.sin(t)])
        slices.append(wasserstein_distance(projected, projected, p, q))
    return float(np.mean(slices))


def ab_controls(truth: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"truth": truth, "x0.5": recolour(truth, lambda ab: 0.5 * ab), "x1.25": recolour(truth, lambda ab: 1.25 * ab),
            "hue90": recolour(truth, lambda ab: rotate_hue(ab, 90)), "gray": recolour(truth, torch.zeros_like)}


def test_ab_hist_swd_hue_rotation_cannot_win():
    truth = photos(48)
    results = {name: score(pred, truth, ["delta_colourfulness", "ab_hist_swd"]) for name, pred in ab_controls(truth).items()}
    swd = {name: r["ab_hist_swd"]["value"] for name, r in results.items()}
    delta = {name: r["delta_colourfulness"]["value"] for name, r in results.items()}
    assert swd["truth"] == 0.0 and results["truth"]["ab_hist_swd"]["ci95"] == [0.0, 0.0]
    assert 0 < swd["x1.25"] < swd["x0.5"] < swd["hue90"]  # the hue rotation is the worst ...
    assert delta["hue90"] < delta["x1.25"]  # ... where colourfulness, blind to hue, prefers it
    assert swd["gray"] > swd["x0.5"]
    entry = results["x1.25"]["ab_hist_swd"]
    assert entry["status"] == "ok" and entry["higher_is_better"] is False and entry["n"] == 3
    assert "per_image" not in entry  # set-level: ordered by the value, no per-image verdicts
    assert entry["ci95"][0] < entry["ci95"][1]
    assert entry["settings"] == "ab-hist-swd-lab-d65-grid10-23x23-centres-pm110-image-weighted-sliced-w1-64dirs"


def test_ab_hist_swd_equals_direct_numpy_and_ignores_the_batch_split():
    truth = photos(48)
    pred = recolour(truth, lambda ab: rotate_hue(0.8 * ab, 25) + torch.tensor([4.0, -6.0]).view(1, 2, 1, 1))
    whole = score(pred, truth, ["ab_hist_swd"])["ab_hist_swd"]
    assert whole["value"] == pytest.approx(numpy_ab_hist_swd(pred, truth), rel=1e-9)
    split = score(pred, truth, ["ab_hist_swd"], batch=2)["ab_hist_swd"]  # batches of 2 + 1
    assert (split["value"], split["ci95"]) == (whole["value"], whole["ci95"])  # bit for bit, deterministic


def test_ab_hist_swd_fetches_nothing_per_batch(monkeypatch):
    fetches = []
    for method in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, method)
        monkeypatch.setattr(torch.Tensor, method,
                            lambda self, *a, _m=method, _f=original, **k: fetches.append(_m) or _f(self, *a, **k))
    g = torch.Generator().manual_seed(0)
    counts = []
    for n_batches in (2, 5):
        batches = [tuple(torch.randint(0, 256, (2, 3, 16, 16), generator=g, dtype=torch.uint8) for _ in "pt")
                   for _ in range(n_batches)]
        fetches.clear()
        result = evaluate(batches, [ABHistSWD(MetricContext(device=CPU))], total=2 * n_batches)
        assert result["ab_hist_swd"]["status"] == "ok"
        counts.append(sorted(fetches))
    assert counts[0] == counts[1]
