"""HTML leaderboards rendered with Jinja2 (installed as ``bench.reports``)."""

from bench.reports.site import render_site

__all__ = ["render_site"]
