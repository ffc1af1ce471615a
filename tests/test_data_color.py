import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from bench.color import (
    AB_SCALE,
    L_SCALE,
    denormalize_lab,
    lab_to_rgb,
    normalize_lab,
    normalized_lab_to_rgb,
    rgb_to_lab,
    rgb_to_normalized_lab,
)


def to_nhwc(t):
    return t.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rgb_to_lab_matches_skimage(dtype):
    rgb = torch.rand(4, 3, 17, 23, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rgb[0, :, :2, :2] = 0.0  # exercise the linear branches (dark pixels)
    rgb[1, :, :2, :2] = 1.0
    ours = rgb_to_lab(rgb.to(dtype)).double()
    expected = np.stack([rgb2lab(image) for image in to_nhwc(rgb)])
    np.testing.assert_allclose(to_nhwc(ours), expected, atol=1e-3)


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    g = torch.Generator().manual_seed(1)
    L = torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64) * 100
    ab = (torch.rand(3, 2, 16, 16, generator=g, dtype=torch.float64) - 0.5) * 220  # many out of gamut
    lab = torch.cat([L, ab], 1)
    ours = lab_to_rgb(lab)
    with pytest.warns(UserWarning):  # skimage warns about the negative-z pixels it clips, as we do
        expected = np.stack([lab2rgb(image) for image in to_nhwc(lab)])
    np.testing.assert_allclose(to_nhwc(ours), expected, atol=1e-3)
    assert ours.min() >= 0 and ours.max() <= 1


def test_round_trip_and_normalisation():
    rgb = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    L, ab = rgb_to_normalized_lab(rgb)
    assert L.shape == (2, 1, 8, 8) and ab.shape == (2, 2, 8, 8)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    torch.testing.assert_close(normalized_lab_to_rgb(L, ab), rgb, atol=1e-4, rtol=0)
    lab = rgb_to_lab(rgb)
    L2, ab2 = normalize_lab(lab)
    torch.testing.assert_close(L2, lab[:, :1] / L_SCALE - 1)
    torch.testing.assert_close(ab2, lab[:, 1:] / AB_SCALE)
    torch.testing.assert_close(denormalize_lab(L2, ab2), lab)


def test_differentiable_with_finite_gradients_everywhere():
    rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    rgb[0, :, 0, 0] = 0.0  # pow() at zero would give inf/nan gradients without the clamps
    rgb.requires_grad_(True)
    rgb_to_lab(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = torch.cat([torch.rand(1, 1, 4, 4) * 100, torch.randn(1, 2, 4, 4) * 80], 1).double().requires_grad_(True)
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()
    x = (torch.rand(1, 3, 2, 2, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (x,))


def test_runs_on_any_device_and_keeps_dtype():
    rgb = torch.rand(1, 3, 4, 4, dtype=torch.float32)
    assert rgb_to_lab(rgb).dtype == torch.float32
    if torch.cuda.is_available():
        assert rgb_to_lab(rgb.cuda()).device.type == "cuda"


def test_constants_are_built_once_per_device_and_dtype_with_no_inversion_per_call(monkeypatch):
    from bench import color

    rgb = torch.rand(1, 3, 4, 4)
    color.normalized_lab_to_rgb(*color.rgb_to_normalized_lab(rgb))  # warm the cache
    built = []
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: built.append(a) or pytest.fail("constant rebuilt"))
    monkeypatch.setattr(torch.linalg, "inv", lambda *a, **k: pytest.fail("matrix inverted per call"))
    for _ in range(3):
        color.normalized_lab_to_rgb(*color.rgb_to_normalized_lab(rgb))
    assert built == []
    monkeypatch.undo()
    float64 = color.rgb_to_lab(rgb.double())  # another dtype gets its own constants
    assert float64.dtype == torch.float64


def test_constants_first_built_under_inference_mode_still_allow_gradients():
    from bench import color

    color._constant.cache_clear()
    with torch.inference_mode():
        lab_to_rgb(rgb_to_lab(torch.rand(1, 3, 4, 4)))
    rgb = torch.rand(1, 3, 4, 4, requires_grad=True)
    lab_to_rgb(rgb_to_lab(rgb)).sum().backward()
    assert torch.isfinite(rgb.grad).all()
