"""``bench score`` (metrics of a folder against ground truth) and ``bench report`` (the HTML leaderboard)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli.common import split_list
from bench.errors import BenchError


def cmd_score(args) -> int:
    from bench.environment import resolve_device
    from bench.evaluation.folders import score_folders

    names = split_list(args.metrics) if args.metrics else None
    if names:
        from bench import registry

        for n in names:
            registry.metrics().get(n)
    result = score_folders(Path(args.pred), Path(args.target), names, device=resolve_device(args.device),
                           weights_dir=args.weights_dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['n_images']} image pairs")
    for name, detail in result["metric_details"].items():
        print(f"  {name:<20} {describe_metric(detail)}")
    speeds = [d["pass_images_per_s"] for d in result["metric_details"].values() if d.get("pass_images_per_s")]
    if speeds:
        print(f"  ({speeds[0]:.1f} images/s for the whole pass)")
    return 0


def describe_metric(detail: dict) -> str:
    """One line for a metric result: value, CI and the set-level extras (std, N, warnings)."""
    if detail.get("value") is None:
        return f"{detail['status']}: {detail.get('reason', '')}".splitlines()[0]
    parts = [f"{detail['value']:.4f}"]
    if detail.get("ci95"):
        parts.append(f"95% CI {detail['ci95'][0]:.4f}–{detail['ci95'][1]:.4f}")
    if detail.get("std") is not None:
        parts.append(f"std {detail['std']:.4g}" + (f" over {detail['subsets']} subsets of {detail['subset_size']}" if "subsets" in detail else ""))
    if detail.get("signed_gap") is not None:
        parts.append(f"signed gap {detail['signed_gap']:+.4f}")
    if "n_reference" in detail:
        parts.append(f"N={detail['n']} vs {detail['n_reference']}")
    if detail.get("settings"):
        parts.append(detail["settings"])
    text = ", ".join(parts)
    return text + (f"  ⚠ {detail['warning']}" if detail.get("warning") else "")


def cmd_report(args) -> int:
    from bench.reports import render_site

    verdicts = split_list(args.verdicts) if args.verdicts is not None else []
    if args.verdicts is not None and not verdicts:
        raise BenchError(f"--verdicts {args.verdicts!r}: give one or more metric names, e.g. --verdicts psnr,ssim")
    if args.rank_by is not None and not args.rank_by.strip():
        raise BenchError("--rank-by '': give a metric name, e.g. --rank-by lpips")
    site = render_site([Path(p) for p in args.runs], Path(args.out),
                       rank_by=args.rank_by.strip() if args.rank_by else None, verdicts=verdicts)
    print(site / "index.html")
    return 0


def add_score_parser(sub) -> None:
    """``bench score``."""
    p = sub.add_parser("score", help="score a folder of colorized images against ground truth",
                       description="Match the images of two folders by file name and compute the suite's "
                       "metrics. Names match without their image extension, and without a second one when they have "
                       "two, so `bench colorize` outputs score directly against the photos they came from: "
                       "photo.jpg.png, photo.jpg and photo.png all match photo (a numbered output, photo.jpg-2.png, "
                       "is another photo of that name and stays unmatched). Two files of one folder that match the "
                       "same name are an error; files without a counterpart are ignored and counted. Sub-folders "
                       "are not read.")
    p.add_argument("--pred", required=True, help="folder of colorized images, e.g. a `bench colorize --out` folder")
    p.add_argument("--target", required=True, help="folder of ground-truth images (the same names; .png, .jpg, "
                   ".jpeg, .bmp, .tif, .tiff or .webp)")
    p.add_argument("--metrics", default=None, help="comma list (default: all registered)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--weights-dir", default=None,
                   help="folder of pretrained weight files (default: $COLORBENCH_WEIGHTS)")
    p.add_argument("--json", action="store_true", help="machine-readable output, with per-image values")
    p.set_defaults(func=cmd_score)


def add_report_parser(sub) -> None:
    """``bench report``."""
    p = sub.add_parser("report", help="render the HTML leaderboard site from runs folders",
                       description="Render a static leaderboard site (works from file://) from one or more runs "
                       "folders: one board per dataset, image size, budget, hardware class and precision, the runs "
                       "of a config that differ only in seed merged into one row (mean over seeds with its 95 % "
                       "interval), ranked by one metric. Beside index.html it writes leaderboard.json and "
                       "leaderboard.csv; it prints the path of index.html.")
    p.add_argument("--runs", nargs="+", default=["runs"], help="one or more runs folders to merge (default: runs)")
    p.add_argument("--out", default="site", help="site folder (default: ./site)")
    p.add_argument("--rank-by", default=None, metavar="METRIC",
                   help="the metric every board is ranked by; it needs a direction (default: lpips; a board "
                   "without its values falls back to the first metric with one, and says so)")
    p.add_argument("--verdicts", default=None, metavar="METRIC[,METRIC]",
                   help="also show pairwise verdicts on these metrics (intervals over seeds and paired test images, "
                   "simultaneous over each metric's pairs), e.g. psnr,colourfulness")
    p.set_defaults(func=cmd_report)
