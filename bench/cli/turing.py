"""``bench turing`` (build a blind Turing-test study) and ``bench turing score`` (fooling rates from votes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.cli.common import split_list, stdout_console
from bench.errors import BenchError


def cmd_turing(args) -> int:
    """``bench turing --runs DIR --out STUDY`` builds a study; ``bench turing score STUDY VOTES…`` scores it."""
    if args.turing_command == "score":
        from bench.reports.turing.votes import score_study
        from bench.reports.turing.tables import print_scores

        scores = score_study(Path(args.study), [Path(p) for p in args.votes], min_catch=args.min_catch)
        if args.report:
            from bench.reports import render_site

            runs_dirs = args.report_runs or scores["runs_dirs"]
            if not runs_dirs:
                raise BenchError("--report: design.json records no runs folder; name them with --runs")
            rank_by = args.rank_by.strip() if args.rank_by and args.rank_by.strip() else None
            site = render_site([Path(d) for d in runs_dirs], Path(args.report), rank_by=rank_by, turing=scores)
            scores["report"] = str(site / "index.html")
        if args.json:
            print(json.dumps(scores, indent=2))
        else:
            print_scores(scores, stdout_console())
            if args.report:
                print(scores["report"])
        return 0
    from bench.reports.turing.study import build_study
    from bench.reports.turing.tables import study_summary

    study = build_study([Path(d) for d in args.runs], Path(args.out),
                        methods=split_list(args.methods) if args.methods else None, images=args.images,
                        seed=args.seed, catch=args.catch, time_limit=args.time_limit, blocks=args.blocks,
                        allow_repeats=args.allow_repeats, title=args.title)
    if args.json:
        print(json.dumps({k: study[k] for k in ("study_id", "title", "seed", "blocks", "allow_repeats", "catch_per_block",
                                                "time_limit_s", "arms", "images")}
                         | {"trials": len(study["trials"]), "site": str(Path(args.out) / "site" / "index.html"),
                            "design": str(Path(args.out) / "design.json")}, indent=2))
    else:
        print(study_summary(study, Path(args.out)))
    return 0


def add_turing_parser(sub) -> None:
    """``bench turing`` and its ``score`` sub-command."""
    p = sub.add_parser(
        "turing", help="blind colorization Turing test: build a study site from runs, score raters' votes",
        description="Build a static study site (works from file:// and on any static host): each trial shows one "
        "test image twice, the real photo and one method's colorization, left/right at random, and asks which one "
        "is real. Trials are a balanced, seeded design over methods and images, with catch trials (real vs gray). "
        "The page never shows method names or the real side; STUDY/design.json (the answer key, never published) "
        "maps the votes back. Raters export their answers as one JSON file each; `bench turing score STUDY "
        "VOTES...` computes every method's fooling rate.",
        epilog="examples:\n"
        "  bench run --methods baseline,pix2pix --dataset flowers --samples 20   # keep 20 test images as samples\n"
        "  bench turing --runs runs --out study --images 20 --time-limit 1      # publish study/site/\n"
        "  bench turing score study votes/*.json                                 # fooling rates\n"
        "  bench turing score study votes/*.json --report site                   # the leaderboard, with them\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", nargs="+", default=["runs"], help="runs folders with the methods to test (default: runs)")
    p.add_argument("--out", default="study", help="a new folder for the study (default: ./study)")
    p.add_argument("--methods", default=None,
                   help="comma list of methods (method names, or row labels such as 'pix2pix (gan_mode=lsgan)') "
                   "(default: every finished method run)")
    p.add_argument("--images", type=int, default=None,
                   help="test images to use (default: every image with samples in all chosen runs; `bench run "
                   "--samples N` keeps N)")
    p.add_argument("--seed", type=int, default=0, help="seed of the design: images, pairs, sides, order (default: 0)")
    p.add_argument("--catch", type=int, default=5, help="catch trials (real vs gray) per block (default: 5)")
    p.add_argument("--time-limit", type=float, default=0.0, metavar="SECONDS",
                   help="seconds the pictures are shown per trial, then hidden until the rater chooses; Zhang et al. "
                   "used about 1 (default: 0 = no limit)")
    p.add_argument("--blocks", type=int, default=None,
                   help="split the trials into B blocks, one per rater; B >= the number of methods M shows each rater "
                   "each image at most once, B > M gives shorter sessions (default: M, a Latin square: each rater "
                   "judges every image once, each with another method)")
    p.add_argument("--allow-repeats", action="store_true",
                   help="allow --blocks below the number of methods (B dividing it): each rater then judges each "
                   "photo M/B times and can learn which one is real")
    p.add_argument("--title", default=None, help="the question on the page (default: 'Which one is the real photo?')")
    p.add_argument("--json", action="store_true", help="print the study's design summary as JSON")
    p.set_defaults(func=cmd_turing, turing_command=None)
    turing_sub = p.add_subparsers(dest="turing_command", metavar="[score ...]")
    s = turing_sub.add_parser("score", help="fooling rate per method from the raters' exported votes",
                              description="Check every votes file against the study's design.json, drop raters who "
                              "fail the catch trials, and compute each method's fooling rate (share of its trials "
                              "where the colorization was picked as real; 50 % = indistinguishable) with a 95 % "
                              "interval from a two-way cluster bootstrap over raters and images (per rater: Wilson).")
    s.add_argument("study", help="the study folder (or its design.json)")
    s.add_argument("votes", nargs="+", help="votes files (JSON) exported by the study page, one per rater")
    s.add_argument("--min-catch", type=float, default=0.8,
                   help="share of catch trials a rater must get right to be kept (default: 0.8)")
    s.add_argument("--report", default=None, metavar="SITE",
                   help="also render the leaderboard site with a fooling-rate column (as `bench report` does)")
    s.add_argument("--runs", dest="report_runs", nargs="+", default=None,
                   help="runs folders for --report (default: those the study was built from)")
    s.add_argument("--rank-by", default=None, metavar="METRIC", help="ranking metric for --report (default: lpips)")
    s.add_argument("--json", action="store_true", help="machine-readable output, with every rater")
