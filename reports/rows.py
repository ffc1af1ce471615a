"""A board's row: one method with one set of changed options, its seeds merged; its problems in full and in one line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.reports.cells import Cell
from bench.reports.runs import Run, as_text, options_text
from bench.reports.verdicts import Comparison

if TYPE_CHECKING:
    from bench.reports.turing.votes import Fooling

_DETAIL = re.compile(r" \([^()]*(?:/|\$|://)[^()]*\)")  # a parenthesis holding a path, a variable or a URL


@dataclass
class Row:
    method: str
    label: str  # method (changed options)
    slug: str
    runs: list[Run]
    status: str
    reason: str | None
    cells: dict[str, Cell]
    stats: dict[str, Cell]
    kind: str = "method"  # "method" | "reference"
    rank: int | None = None
    tied_with: list[str] = field(default_factory=list)
    vs_gray: Comparison | None = None
    fooling: Fooling | None = None  # Turing-test fooling rate, when a study covers the row (bench turing score)

    @property
    def is_reference(self) -> bool:
        return self.kind == "reference"

    @property
    def ok_runs(self) -> list[Run]:
        return [r for r in self.runs if r.status == "ok"]

    @property
    def seeds(self) -> list:
        return [r.seed for r in self.runs]

    @property
    def changed_options(self) -> dict:
        return self.runs[0].changed_options

    @property
    def options_text(self) -> str:
        return options_text(self.changed_options)

    @property
    def description(self) -> str:
        return next((as_text(r.raw.get("method_description")) for r in self.runs if r.raw.get("method_description")), "")

    @property
    def plugin(self) -> str:
        """The distribution (and version) the method came from; built-ins carry colorbench's version."""
        for run in self.runs:
            plugin = as_text(run.raw.get("method_plugin"))
            if plugin:
                version = as_text(run.section("environment").get("colorbench"))
                return f"{plugin}, colorbench {version}" if "built-in" in plugin and version else plugin
        return ""

    @property
    def problems(self) -> list[str]:
        """Each seed that is not ok, with its status and full error (paths and URLs included)."""
        return problem_texts(self.runs)

    @property
    def reason_line(self) -> str:
        """The problems in one line, without paths and URLs (``problems`` holds them)."""
        return reason_line(self)

    @property
    def gray_mark(self) -> str:
        """vs the gray input on the ranked metric: better | worse | tied | "" (not compared)."""
        c = self.vs_gray
        if c is not None and c.needs_seeds:
            return "needs seeds"
        if c is None or not c.comparable or c.higher_is_better is None:
            return ""
        return "tied" if c.sign == 0 else ("better" if c.better == c.left else "worse")


def problem_texts(runs: list[Run]) -> list[str]:
    seed = lambda r: f"seed {r.seed} " if r.seed is not None else ""  # noqa: E731 (references have no seed)
    return list(dict.fromkeys(f"{seed(r)}{r.status}: {r.error or 'no reason given'}" for r in runs if r.status != "ok"))


def short_reason(error: str) -> str:
    """An error without its parenthesised paths and URLs (they stay in the full text)."""
    return _DETAIL.sub("", error).strip() or error


def reason_line(row: Row) -> str:
    """A row's problems in one line: its seeds grouped by status and short reason."""
    groups: dict[tuple[str, str], list] = {}
    for run in row.runs:
        if run.status != "ok":
            groups.setdefault((run.status, short_reason(run.error or "no reason given")), []).append(run.seed)
    parts = []
    for (status, reason), seeds in groups.items():
        known = [s for s in seeds if s is not None]
        who = f"seed{'s' if len(known) > 1 else ''} {', '.join(map(str, known))}" if known else ""
        head = " ".join(filter(None, [who, "" if status == row.status else status]))  # the cell says the row's own
        parts.append(f"{head}: {reason}" if head else reason)
    return "; ".join(parts)
