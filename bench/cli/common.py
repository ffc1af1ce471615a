"""Helpers shared by the command modules: list and KEY=VALUE parsing, the stdout console, the examples."""

from __future__ import annotations

import sys

from bench.errors import BenchError

EXAMPLES = """\
examples:
  bench run --methods all --dataset sample --budget smoke     # offline CPU demo
  bench run --methods all --dataset flowers                    # the real benchmark (15 GPU-minutes a method)
  bench run --methods baseline,pix2pix --dataset flowers --size 64 --budget 500steps --seeds 3
  bench report --runs runs --out site                           # HTML leaderboard
  bench score --pred my_outputs/ --target ground_truth/ --json
  bench colorize --checkpoint runs/flowers/pix2pix/256px-900s-<hash>/seed0 old_photo.jpg --out colorized/
  bench score --pred colorized/ --target photos/   # colorize's outputs against the colour photos
  bench turing --runs runs --out study --images 20 --time-limit 1  # blind Turing test; then: bench turing score
"""


def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_assignments(items: list[str], flag: str) -> dict:
    """KEY=VALUE pairs (values stay strings; the plugin's Options convert them)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def stdout_console():
    """Rich console for tables on stdout; piped or captured output is not squeezed to 80 columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=250)
