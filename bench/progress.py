"""Progress bars (rich) on stderr, so machine-readable stdout stays clean."""

from __future__ import annotations

import os
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
_quiet = os.environ.get("COLORBENCH_QUIET", "") not in ("", "0")
# A launcher worker sends its progress to the driver instead of drawing bars:
# reporter(description, completed, total, info).
_reporter = None


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def set_reporter(reporter) -> None:
    global _reporter
    _reporter = reporter


def log(message: str) -> None:
    if not _quiet:
        console.print(message, highlight=False, markup=False, soft_wrap=True)


@contextmanager
def progress_bar(description: str, total: float | None, unit_column: bool = True):
    """Yields ``advance(amount=1, **fields)``; shows nothing when quiet."""
    if _reporter is not None:
        reporter, done = _reporter, [0.0]

        def report(amount=1, **fields):
            done[0] += amount
            reporter(description, done[0], total, fields.get("info", ""))

        reporter(description, 0.0, total, "")
        yield report
        return
    if _quiet:
        yield lambda amount=1, **fields: None
        return
    columns = [TextColumn("{task.description}"), BarColumn()]
    columns += [MofNCompleteColumn()] if unit_column else [TextColumn("{task.percentage:>3.0f}%")]
    columns += [TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, info="")
        yield lambda amount=1, **fields: progress.update(task, advance=amount, **fields)


def warn(message: str) -> None:
    """A one-line warning on stderr, shown even with --quiet: something on disk was damaged or set aside."""
    console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)
