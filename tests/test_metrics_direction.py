"""Every registered metric points the right way on control colorizations of real photos.

Controls: the truth's lightness with its own ab scaled by 0.5 (washed out) and by 1.25 (slightly
too vivid): the milder distortion (x 1.25) must come out better than x 0.5, and the truth best, on
every metric with a direction -- both in the set value and in what the report's verdicts and ranks
use, the per-image values (their mean difference is what the paired bootstrap tests). And the set
value of a metric with per-image values is their mean: the quantity that is reported is the one
that is ranked. Metrics that cannot run here (missing weights) are skipped with their reason.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench import registry
from bench.color import float_to_uint8, lab_to_rgb, rgb_to_lab
from bench.evaluation.metric_pass import build_metrics, evaluate
from bench.metric import MetricContext
from bench.weights import WeightStore

SIZE = 48
CONTROLS = {"truth": 1.0, "ab x 0.5": 0.5, "ab x 1.25": 1.25}
MILD, STRONG = "ab x 1.25", "ab x 0.5"


def sample_photos(per_photo: int = 2, size: int = SIZE) -> torch.Tensor:
    """Test crops of the embedded ``sample`` dataset (scikit-image's photos), (N, 3, size, size) in [0, 1]."""
    from bench.datasets.sample import SampleDataset, SampleOptions

    dataset = SampleDataset(".", SampleOptions(test_per_photo=per_photo))
    arrays = [np.asarray(ref.open().convert("RGB").resize((size, size), Image.BICUBIC)) for ref in dataset.images("test")]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def scale_ab(truth: torch.Tensor, factor: float) -> torch.Tensor:
    lab = rgb_to_lab(truth)
    return lab_to_rgb(torch.cat([lab[:, :1], factor * lab[:, 1:]], dim=1))


@pytest.fixture(scope="module")
def scored(request) -> dict[str, dict]:
    """Every registered metric on each control, one pass each (the shared LPIPS weights when present)."""
    try:
        weights = request.getfixturevalue("shared_weights_dir")
    except pytest.skip.Exception:  # no LPIPS weights here: lpips, fd-alex, kd-alex are unavailable, not the test
        weights = None
    truth = sample_photos()
    target = float_to_uint8(truth)
    context = MetricContext(device=torch.device("cpu"), weights=WeightStore(weights))
    results = {}
    for label, factor in CONTROLS.items():
        pred = target if factor == 1.0 else float_to_uint8(scale_ab(truth, factor))
        metrics, unavailable = build_metrics(registry.list_metrics(), context)
        results[label] = unavailable | evaluate([(pred[:9], target[:9]), (pred[9:], target[9:])], metrics, len(pred))
    return results


def better(higher_is_better: bool, a: float, b: float) -> bool:
    return a > b if higher_is_better else a < b


@pytest.mark.parametrize("name", registry.list_metrics())
def test_milder_distortion_scores_better_and_per_image_values_are_what_is_ranked(scored, name):
    entries = {label: result[name] for label, result in scored.items()}
    higher = entries["truth"]["higher_is_better"]
    if any(e["status"] != "ok" for e in entries.values()):
        reason = next(e.get("reason", "") for e in entries.values() if e["status"] != "ok")
        pytest.skip(f"{name} {entries['truth']['status']} here: {reason.splitlines()[0] if reason else ''}")
    if higher is None:
        pytest.skip(f"{name} is descriptive (no better direction)")
    value = {label: e["value"] for label, e in entries.items()}

    # The set value: x 1.25 better than x 0.5, the truth at least as good as both -- except for the
    # kernel distances (KID, kd-alex): their unbiased MMD^2 estimate of two equal sets is 0 only on
    # average (it can be negative), so the truth is not the minimum by construction.
    assert better(higher, value[MILD], value[STRONG]), value
    if "subsets" not in entries["truth"]:
        assert all(not better(higher, value[label], value["truth"]) for label in (MILD, STRONG)), value

    per_image = {label: e.get("per_image") for label, e in entries.items()}
    if per_image[MILD] is None:  # set-level (FID, KID, ab_hist_swd): ordered by the value only
        assert registry.metrics().get(name).cls.per_image is False, f"{name}: a per-image metric without per-image values"
        return
    mild, strong, truth = (np.asarray(per_image[label], dtype=np.float64) for label in (MILD, STRONG, "truth"))
    for label, values in ((MILD, mild), (STRONG, strong)):  # what is reported is what is ranked
        assert values.shape == (len(truth),)
        assert value[label] == pytest.approx(values.mean(), rel=1e-9, abs=1e-12), (label, value[label], values.mean())
    # The paired comparison the verdicts use (bench.stats.compare_means of per-image values): the
    # sign of the mean per-image difference says which side is better.
    assert better(higher, (mild - strong).mean(), 0.0), (mild - strong).mean()
    if np.isfinite(truth).all():  # the truth's PSNR is infinite: not comparable, only the value counts
        assert all(not better(higher, (values - truth).mean(), 0.0) for values in (mild, strong))


# -- end to end: `bench score` and the board's verdicts --------------------------------------------
REPORT_METRICS = ["ssim", "delta_colourfulness", "ab_hist_swd"]  # cheap ones; lpips etc. are checked above


def test_bench_score_and_the_board_point_the_right_way(run_cli, tmp_path):
    """`bench score` gives ab_hist_swd and the absolute per-image colourfulness gaps; a board ranked by
    delta_colourfulness puts x 1.25 above x 0.5 and both above the gray input (the paired comparison
    of per-image values and the means agree); ab_hist_swd is a column, ordered by its value."""
    import json

    from bench.reports import render_site
    from tests.report_example import image_names, write_reference, write_result

    truth = sample_photos(per_photo=2, size=32)
    target = float_to_uint8(truth)
    preds = {"ab x 0.5": float_to_uint8(scale_ab(truth, 0.5)), "ab x 1.25": float_to_uint8(scale_ab(truth, 1.25)),
             "gray": float_to_uint8(scale_ab(truth, 0.0)), "truth": target}
    folders = {}
    for label, pred in [*preds.items(), ("target", target)]:
        folders[label] = tmp_path / "png" / label.replace(" ", "")
        folders[label].mkdir(parents=True)
        for k, image in enumerate(pred.permute(0, 2, 3, 1).numpy()):
            Image.fromarray(image).save(folders[label] / f"{image_names(len(pred))[k]}.png")
    scored = {}
    for label in preds:
        code, out, _ = run_cli("score", "--pred", folders[label], "--target", folders["target"],
                               "--metrics", ",".join(REPORT_METRICS), "--device", "cpu", "--json")
        assert code == 0
        scored[label] = json.loads(out)
    mild = scored["ab x 1.25"]
    assert mild["metric_details"]["ab_hist_swd"]["status"] == "ok" and "ab_hist_swd" not in mild["per_image"]
    gaps = mild["per_image"]["delta_colourfulness"]
    assert min(gaps) >= 0 and mild["metrics"]["delta_colourfulness"] == pytest.approx(np.mean(gaps))
    swd = {label: s["metrics"]["ab_hist_swd"] for label, s in scored.items()}
    assert swd["truth"] == 0 < swd["ab x 1.25"] < swd["ab x 0.5"] < swd["gray"]
    code, out, _ = run_cli("score", "--pred", folders["ab x 1.25"], "--target", folders["target"],
                           "--metrics", ",".join(REPORT_METRICS), "--device", "cpu")
    assert code == 0 and "ab_hist_swd" in out and "signed gap +" in out  # too vivid: a positive set-level gap

    runs = tmp_path / "runs"
    for label, result in scored.items():  # two seeds of each control (deterministic: equal values), so verdicts can decide
        directories = ([write_reference(runs, label, size=32)] if label in ("gray", "truth")
                       else [write_result(runs, label.replace(" ", ""), seed, size=32) for seed in (0, 1)])
        for directory in directories:
            stored = json.loads((directory / "result.json").read_text())
            stored.update(metric_details=result["metric_details"], metrics=result["metrics"], per_image=result["per_image"])
            (directory / "result.json").write_text(json.dumps(stored))
    site = render_site([runs], tmp_path / "site", rank_by="delta_colourfulness", verdicts=["ab_hist_swd"])
    board = json.loads((site / "leaderboard.json").read_text())["boards"][0]
    assert board["rank_by"] == "delta_colourfulness"
    rows = {row["method"]: row for row in board["rows"]}
    # Rows by mean best first, ranks in that order, and every verdict pointing to the milder distortion
    # and away from the gray input.
    assert [r["method"] for r in board["rows"]] == ["ground truth", "abx1.25", "abx0.5", "gray input"]
    assert (rows["abx1.25"]["rank"], rows["abx0.5"]["rank"]) == (1, 2)
    (verdict,) = board["verdicts"]["delta_colourfulness"]
    assert (verdict["left"], verdict["right"]) == ("abx1.25", "abx0.5") and verdict["difference"] < 0, verdict
    assert verdict["verdict"] == "distinguishable" and verdict["better"] == "abx1.25", verdict
    expected = np.mean(np.subtract(gaps, scored["ab x 0.5"]["per_image"]["delta_colourfulness"]))
    assert verdict["difference"] == pytest.approx(expected)  # on the absolute per-image gaps
    for method in ("abx1.25", "abx0.5"):
        vs_gray = rows[method]["vs_gray"]
        assert vs_gray["difference"] < 0 and vs_gray["better"] == method and vs_gray["mark"] == "better", vs_gray
    columns = {c["name"]: c for c in board["metrics"]}
    assert columns["ab_hist_swd"]["higher_is_better"] is False
    assert rows["abx1.25"]["metrics"]["ab_hist_swd"]["mean"] == pytest.approx(swd["ab x 1.25"])
    (swd_verdict,) = board["verdicts"]["ab_hist_swd"]
    # Set-level: compared on its per-seed values; never the wrong way.
    assert swd_verdict["difference"] < 0 and swd_verdict["better"] in (None, "abx1.25"), swd_verdict
    assert "ab_hist_swd" in (site / "index.html").read_text()
