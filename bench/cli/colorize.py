"""``bench colorize``: your own photos through a trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from bench.errors import BenchError


def cmd_colorize(args) -> int:
    from bench.colorize import colorize_all, plan, stopping_on_sigterm, summary, summary_line
    from bench.engine.checkpoint import load_checkpoint, resolve_checkpoint
    from bench.environment import resolve_device
    from bench.progress import console, log, progress_bar
    from bench.store.atomic import clean_orphans

    if args.max_pixels < 1:
        raise BenchError(f"--max-pixels {args.max_pixels}: must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file; expected a folder for the colorized PNGs")
    checkpoint = resolve_checkpoint(Path(args.checkpoint))
    if checkpoint != Path(args.checkpoint):
        log(f"checkpoint: {checkpoint} (the only checkpoint.pt below {args.checkpoint})")
    method, meta = load_checkpoint(checkpoint, resolve_device(args.device))
    if args.size is not None and args.size != meta["size"]:
        raise BenchError(f"--size {args.size}: this checkpoint was trained at {meta['size']} px and its network only "
                         "runs at that size (outputs keep each photo's own size anyway); leave --size out")
    entries = plan(args.images, out, args.glob)
    clean_orphans(out)  # temporary files of an earlier colorize killed mid-write (SIGKILL)
    with stopping_on_sigterm(), progress_bar(f"colorize ({meta['method']})", total=len(entries)) as advance:
        def on_result(result):
            if result.reason:  # failed and skipped inputs are always reported, even with --quiet
                console.print(f"{result.status}: {result.reason}", markup=False, highlight=False, soft_wrap=True)
            advance()

        results = colorize_all(method, entries, overwrite=args.overwrite, max_pixels=args.max_pixels,
                               on_result=on_result)
    console.print(summary_line(results), markup=False, highlight=False)
    written = [r.output for r in results if r.status == "colorized"]
    if args.json:
        print(json.dumps({"method": meta["method"], "checkpoint": str(checkpoint), "size": meta["size"],
                          "outputs": written, "summary": summary(results),
                          "files": [r.to_dict() for r in results]}, indent=2))
    elif written:
        print("\n".join(written))
    return 1 if any(r.status == "failed" for r in results) else 0


def add_colorize_parser(sub) -> None:
    """``bench colorize``."""
    p = sub.add_parser("colorize", help="colorize your own photos with a trained checkpoint",
                       description="Run the network at its trained size on L, upsample ab and recombine with "
                       "the full-resolution L: outputs keep each photo's own size. Every input gives an output or a "
                       "one-line reason and the others go on; the exit status is 1 when any input failed.")
    p.add_argument("--checkpoint", required=True,
                   help="a checkpoint.pt written by `bench run`, or a folder with exactly one below it: a run folder "
                   "(runs/flowers/pix2pix/64px-60s-<hash>/seed0) or a method folder (runs/flowers/pix2pix) with one "
                   "run; with several, pass the run folder or file (hidden folders are never searched)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="image files (colour or grayscale, any mode Pillow reads) and folders (searched recursively)")
    p.add_argument("--out", required=True, help="output folder: one PNG per input named with its extension "
                   "(photo.jpg -> photo.jpg.png), sub-folders of folder inputs kept")
    p.add_argument("--glob", default=None, help="files to take from folders, e.g. '*.jpg' (case-insensitive; "
                   "default: every image extension Pillow reads)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (default: keep them and report those inputs as skipped)")
    p.add_argument("--max-pixels", type=int, default=200_000_000,
                   help="refuse photos with more pixels than this (default: 200000000)")
    p.add_argument("--size", type=int, default=None,
                   help="optional check: the checkpoint's trained size, the only size its network runs at")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--json", action="store_true", help="print outputs, a summary and each file's status as JSON")
    p.set_defaults(func=cmd_colorize)
