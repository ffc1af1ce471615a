"""What ``bench turing`` prints: the study it built, and the fooling rates as tables (rich)."""

from __future__ import annotations

from pathlib import Path

from bench.reports.turing.design import DESIGN_FILE, SITE_FOLDER
from bench.reports.turing.votes import catch_text


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def interval(ci95: list[float] | None) -> str:
    return "—" if not ci95 else f"{100 * ci95[0]:.1f}–{100 * ci95[1]:.1f} %"


def study_summary(study: dict, out: Path) -> str:
    blocks = study["blocks"]
    per_block = sorted({sum(t["block"] == b for t in study["trials"]) for b in range(1, blocks + 1)})
    catch = study["catch_per_block"]
    lines = [
        f"study {study['study_id']}: {len(study['arms'])} methods x {len(study['images'])} test images, "
        f"{blocks} block{'s' if blocks > 1 else ''} of {' or '.join(map(str, per_block))} trials, {catch} of them "
        "catch trials (real vs gray)" + (f"; {study['time_limit_s']:g} s per trial" if study["time_limit_s"] else
                                         "; no time limit"),
        f"  the site raters open (publish this folder): {out / SITE_FOLDER / 'index.html'}",
        f"  the answer key (keep it private, never publish it): {out / DESIGN_FILE}",
        "  methods: " + "; ".join(arm["label"] for arm in study["arms"]),
        f"score the votes raters export with: bench turing score {out} votes/*.json",
    ]
    n_arms = len(study["arms"])
    lines.insert(1, "  no rater judges a photo twice (a catch trial shows one only after it was judged)"
                 if blocks >= n_arms else f"  each rater judges each photo up to {-(-n_arms // blocks)} times "
                 "(--allow-repeats): raters can learn the real photos")
    if blocks > 1:
        lines.insert(3, f"  each rater gets a block at random; {SITE_FOLDER}/index.html#block=K assigns block K (for "
                        f"balance give rater n block (n - 1) mod {blocks} + 1)")
    return "\n".join(lines)


def print_scores(scores: dict, console) -> None:
    from rich.table import Table

    title = (f"fooling rate (colorization picked as the real photo; 50 % = indistinguishable) — study "
             f"{scores['study_id']}, {scores['raters_kept']} of {scores['raters_total']} raters kept "
             f"({catch_text(scores)})")
    pooled = Table(title=title, title_justify="left")
    for column in ("method", "fooled / votes", "fooling rate", "95 % CI (raters x images bootstrap)", "raters",
                   "timed out"):
        pooled.add_column(column)
    for arm in scores["arms"]:
        pooled.add_row(arm["label"], f"{arm['fooled']} / {arm['votes']}", percent(arm["rate"]), interval(arm["ci95"]),
                       str(arm["raters"]), str(arm["timed_out"]))
    console.print(pooled)

    console.print("95 % CI: two-way cluster bootstrap, raters and images resampled (crossed), "
                  f"{scores['interval']['resamples']} resamples; — with fewer than 2 raters or 2 images on a method",
                  highlight=False)
    raters = Table(title="per rater (Wilson 95 % intervals in --json)", title_justify="left")
    for column in ("rater", "file", "block", "votes", "catch right", "kept"):
        raters.add_column(column)
    for arm in scores["arms"]:
        raters.add_column(arm["label"])
    for rater in scores["raters"]:
        catch = rater["catch"]
        raters.add_row(rater["rater"], Path(rater["file"]).name, str(rater["block"] or "—"), str(rater["votes"]),
                       f"{catch['correct']} / {catch['total']}", "yes" if rater["kept"] else f"no: {rater['reason']}",
                       *(f"{a['fooled']}/{a['votes']} ({percent(a['rate'])})" for a in rater["arms"]))
    console.print(raters)
    catch = scores["catch"]
    if catch["votes"]:
        console.print(f"catch trials (real vs gray), kept raters: {catch['correct']} of {catch['votes']} right "
                      f"({percent(catch['rate'])})", highlight=False)
