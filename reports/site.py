"""Render runs folders into a static leaderboard site.

Layout of the site (relative links only: it works from file:// and on any static host)::

    index.html                       one leaderboard (findings, verdicts, comparison grid) per board
    method/<board>/<method>.html     config, budget, speed, training curves, samples, environment
    img/<board>/*.png                sample images (copied, never base64)
    static/style.css, static/sort.js click-to-sort tables (no CDN)
    leaderboard.json, leaderboard.csv, verdicts.csv, findings.csv

Publishing is atomic: the new site is built in a folder beside ``out`` and swapped in at the end
(the old one renamed aside, the new one renamed in, the old one removed), so a render that is killed
or runs out of disk space leaves the previous site whole. Files in ``out`` that the renderer did not
write are carried over.

Rendering is deterministic: the same runs give the same bytes except the generation date
(``SOURCE_DATE_EPOCH``, when set, fixes that too). Every string from a result goes through
Jinja2 autoescape, and pages forbid inline scripts (Content-Security-Policy) as a second guard.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import jinja2

import bench
from bench.errors import BenchError
from bench.store.atomic import atomic_folder
from bench.reports.board import DEFAULT_RANK_BY, Board, build_boards
from bench.reports.curves import budget_curves, curves_json
from bench.reports.cells import fmt
from bench.reports.charts import loss_charts
from bench.reports.export import findings_csv, leaderboard, leaderboard_csv, leaderboard_json, verdicts_csv
from bench.reports.images import ImageStore, sample_grid
from bench.reports.provenance import provenance
from bench.reports.rows import Row
from bench.reports.runs import Run, as_number, load_runs

MARKER = ".colorbench-site"  # marks a folder this renderer owns, so a re-render may replace its files
MANAGED = ("index.html", "leaderboard.json", "leaderboard.csv", "verdicts.csv", "findings.csv", "img", "method", "static",
           ".nojekyll", MARKER)
STATIC = Path(__file__).parent / "static"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.reports", "templates"),
        autoescape=True,  # every plugin/config/file-name string is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt
    return env


def generated_date() -> str:
    """Now (UTC), or ``SOURCE_DATE_EPOCH`` for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).isoformat(timespec="seconds")
        except (ValueError, OverflowError, OSError):
            raise BenchError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix time in seconds") from None
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _check_out(out: Path) -> None:
    """The site folder may be written: new, empty, or a site this renderer wrote (nothing is touched yet)."""
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file: give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise BenchError(f"--out {out} is not empty and was not written by `bench report`: use a new or empty folder")


def _keep_others(old: Path, new: Path) -> None:
    """Files in the old site that the renderer did not write (a CNAME, a study) move on to the new one."""
    if not old.is_dir():
        return
    for entry in sorted(old.iterdir()):
        if entry.name in MANAGED or (new / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, new / entry.name, follow_symlinks=False)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def _budget_used(run: Run) -> str:
    used = as_number(run.budget.get("used"))
    if used is None:
        return "—"
    return f"{used:.0f} steps" if run.budget.get("kind") == "steps" else f"{fmt(used)} s"


def _run_facts(run: Run) -> dict:
    timings = run.section("timings")
    parameters = {str(k): v for k, v in sorted(run.section("parameters").items()) if isinstance(v, int)}
    return {
        "seed": run.seed if run.seed is not None else "—", "seed_label": run.seed_label,
        "status": run.status, "error": run.error, "where": run.where,
        "traceback": run.raw.get("traceback") if isinstance(run.raw.get("traceback"), str) else None,
        "budget_used": _budget_used(run),
        "steps": as_number(run.budget.get("steps", timings.get("steps"))),
        **{k: as_number(timings.get(k)) for k in ("train_s", "train_images_per_s", "eval_images_per_s",
                                                 "achieved_tflops", "peak_share", "data_share", "compile_s")},
        "parameters": ", ".join(f"{k} {v:,}" for k, v in parameters.items()) or "—",
        "created": run.raw.get("created") if isinstance(run.raw.get("created"), str) else "—",
    }


def _grouped_json(runs: list[Run], section: str, drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Distinct values of a result section as pretty JSON, each with the seeds that share it."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        content = {k: v for k, v in run.section(section).items() if k not in drop}
        if content:
            text = json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False, default=str)
            groups.setdefault(text, []).append(run.seed_label)
    return [(", ".join(seeds), text) for text, seeds in groups.items()]


def _environment_table(runs: list[Run]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    envs = [run.section("environment") for run in runs]
    keys = sorted({str(k) for env in envs for k in env})
    rows = [(key, ["—" if env.get(key) is None else str(env.get(key)) for env in envs]) for key in keys]
    return [run.seed_label for run in runs], rows


def _method_page(env: jinja2.Environment, board: Board, row: Row, images: ImageStore, common: dict) -> str:
    runs = sorted(row.runs, key=lambda r: r.sort_key)
    x_axis = "time" if board.budget.get("kind") == "time" else "step"
    env_headers, env_rows = _environment_table(runs)
    return env.get_template("method.html").render(
        **common, root="../../", board=board, row=row, runs=[_run_facts(r) for r in runs],
        charts=loss_charts(row.ok_runs, x_axis),
        grid=sample_grid([(r.seed_label, r) for r in row.ok_runs], images, board.slug),
        configs=_grouped_json(runs, "config", drop=("seed",)), data=_grouped_json(runs, "data"),
        env_headers=env_headers, env_rows=env_rows, provenance=provenance(runs),
    )


def _metric_directions(runs: list[Run], wanted: list[str]) -> dict[str, bool | None]:
    """{metric: higher_is_better} from the results; the registered metrics complete it when a
    ``wanted`` name is not among them (e.g. --rank-by fid on runs without FID: the board falls back)."""
    directions: dict[str, bool | None] = {}
    for run in runs:
        for name, detail in run.metric_details.items():
            if directions.get(name) is None:
                directions[name] = detail.get("higher_is_better") if isinstance(detail.get("higher_is_better"), bool) else None
    if all(name in directions for name in wanted):
        return directions
    try:
        from bench import registry  # imports the plugins (and torch): only when the results do not say

        for entry in registry.metrics().entries():
            if directions.get(entry.name) is None:
                directions[entry.name] = entry.cls.higher_is_better
    except BenchError:  # a broken third-party plugin: the results still say what they recorded
        pass
    return directions


def check_metric_choices(runs: list[Run], rank_by: str | None, verdicts: list[str]) -> None:
    """--rank-by must name a metric with a direction, --verdicts a known metric (one-line errors)."""
    if rank_by is None and not verdicts:
        return
    directions = _metric_directions(runs, ([rank_by] if rank_by else []) + verdicts)
    ranked = sorted(name for name, better in directions.items() if better is not None)
    if rank_by is not None and directions.get(rank_by) is None:
        why = "is descriptive (no better direction)" if rank_by in directions else "is not a known metric"
        raise BenchError(f"--rank-by {rank_by!r}: {why}; choose one with a direction: {', '.join(ranked)}")
    unknown = [name for name in verdicts if name not in directions]
    if unknown:
        raise BenchError(f"--verdicts {','.join(unknown)}: not a metric of these runs; known: "
                         f"{', '.join(sorted(directions))}")


def _write_site(out: Path, boards: list[Board], runs: list[Run], rank_by: str) -> None:
    """Every file of the site into the (new, empty) folder ``out``."""
    generated = generated_date()
    generator = f"colorbench {bench.__version__}"
    common = {"generated": generated, "generator": generator}
    env = _env()
    images = ImageStore(out)
    pages = {(b.slug, r.slug): f"method/{b.slug}/{r.slug}.html" for b in boards for r in b.rows}
    grids = {}
    for board in boards:
        for row in board.rows:
            _write(out / pages[board.slug, row.slug], _method_page(env, board, row, images, common))
        firsts = [(row.label, row.ok_runs[0]) for row in board.method_rows if row.ok_runs]
        grids[board.slug] = sample_grid(firsts, images, board.slug)
    curves = budget_curves(boards)
    _write(out / "index.html", env.get_template("index.html").render(
        **common, root="", boards=boards, pages=pages, grids=grids, curves=curves,
        board_provenance={b.slug: provenance(b.runs) for b in boards}, provenance=provenance(runs),
    ))
    (out / "static").mkdir()
    for asset in sorted(STATIC.iterdir()):
        if asset.is_file():
            shutil.copyfile(asset, out / "static" / asset.name)
    _write(out / "leaderboard.json", leaderboard_json(leaderboard(boards, pages, generated, generator, rank_by)
                                                      | {"curves": curves_json(curves)}))
    _write(out / "leaderboard.csv", leaderboard_csv(boards))
    _write(out / "verdicts.csv", verdicts_csv(boards))
    _write(out / "findings.csv", findings_csv(boards))
    _write(out / ".nojekyll", "")  # GitHub Pages: serve the files as they are
    _write(out / MARKER, "written by `bench report`; a re-render replaces the files it wrote\n")


def render_site(runs_dirs: list[Path], out: Path, *, rank_by: str | None = None, verdicts: list[str] = (),
                turing: dict | None = None) -> Path:
    """Render every result under ``runs_dirs`` (merged) into the site folder ``out``; returns ``out``.

    ``rank_by``: the ranking metric (default LPIPS); ``verdicts``: metrics whose pairwise verdicts are
    shown besides the ranking metric's; ``turing``: a Turing test's scores (``bench.reports.turing.votes.
    score_study``), shown as a fooling-rate column on the boards whose runs the study covers.
    """
    runs, merge_notes = load_runs([Path(d) for d in runs_dirs])
    check_metric_choices(runs, rank_by, list(verdicts))
    rank_by = rank_by or DEFAULT_RANK_BY
    boards = build_boards(runs, merge_notes, rank_by=rank_by, verdict_metrics=list(verdicts))
    if turing is not None:
        from bench.reports.turing.votes import attach_fooling

        attach_fooling(boards, turing)
    out = Path(out)
    _check_out(out)
    # Built beside the old site and swapped in whole: killed at any moment, or out of disk space, the
    # previous site stays as it was (a re-render replaces everything it wrote, so no stale image remains).
    with atomic_folder(out, what="site") as staging:
        _write_site(staging, boards, runs, rank_by)
        _keep_others(out, staging)
    return out
