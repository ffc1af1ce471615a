"""Nothing lost, nothing wrong (issue 17), publishing: `bench report` and `bench turing` build the new site beside
the old one and swap it in at the end, so a render killed at any moment (an exception raised while pages are
written) or out of disk space (ENOSPC) leaves the previous site whole; one damaged result.json is left out of
the report in one line, not the whole report."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bench.reports.site as site_module
import bench.reports.turing.study as study_module
from bench.reports import render_site
from tests.report_example import image_names, write_result
from bench.reports.turing.study import build_study


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def killed_at(call: int, real, fault=KeyboardInterrupt):
    """``real``, until its ``call``-th call, which raises ``fault`` (by default as a kill would: KeyboardInterrupt
    is no Exception, so no ``except Exception`` on the way stops it)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(args)
        if len(calls) == call:
            raise fault
        return real(*args, **kwargs)
    return wrapped


@pytest.fixture
def published(tmp_path):
    runs = tmp_path / "runs"
    for method in ("baseline", "pix2pix"):
        write_result(runs, method, 0)
    site = render_site([runs], tmp_path / "site")
    (site / "CNAME").write_text("colorbench.example.org\n")  # not the renderer's: carried over by a re-render
    write_result(runs, "cyclegan", 0)  # something new to render
    return runs, site, snapshot(site)


def test_a_render_killed_midway_leaves_the_previous_site_whole(tmp_path, monkeypatch, published):
    runs, site, before = published
    monkeypatch.setattr(site_module, "_write", killed_at(2, site_module._write))  # in the middle of the pages
    with pytest.raises(KeyboardInterrupt):
        render_site([runs], site)
    assert snapshot(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "site"]  # no half-built folder beside it
    monkeypatch.undo()
    render_site([runs], site)
    after = snapshot(site)
    assert after["CNAME"] == before["CNAME"] and after["index.html"] != before["index.html"]
    assert "cyclegan" in after["index.html"].decode()


def test_a_full_disk_says_so_in_one_line_and_keeps_the_previous_site(run_cli, tmp_path, monkeypatch, published):
    runs, site, before = published
    disk_full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(site_module, "_write", killed_at(2, site_module._write, disk_full))
    code, out, err = run_cli("report", "--runs", runs, "--out", site)
    assert code == 2 and "no space left on device" in err and len(err.strip().splitlines()) == 1, err
    assert "previous one is left as it was" in err and out == ""
    assert snapshot(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "site"]


def test_a_swap_killed_between_its_renames_is_undone_by_the_next_render(tmp_path, published):
    runs, site, before = published
    pid = dead_pid()
    aside = tmp_path / f".site.{pid}-0123abcd.old"  # killed after renaming the old site aside
    site.rename(aside)
    (tmp_path / f".site.{pid}-4567cdef.tmp").mkdir()  # and its half-built new one
    render_site([runs], site)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "site"]
    assert snapshot(site)["CNAME"] == before["CNAME"]  # the previous site came back, then was re-rendered


def test_a_damaged_result_is_left_out_of_the_report_in_one_line(run_cli, tmp_path):
    runs = tmp_path / "runs"
    write_result(runs, "baseline", 0)
    damaged = write_result(runs, "pix2pix", 0) / "result.json"
    damaged.write_text(damaged.read_text()[:200])  # truncated
    code, out, err = run_cli("report", "--runs", runs, "--out", tmp_path / "site")
    assert code == 0, err
    said = [line for line in err.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("warning: left out of the report:") and "pix2pix" in said[0]
    board = json.loads((tmp_path / "site" / "leaderboard.json").read_text())["boards"][0]
    assert [row["method"] for row in board["rows"]] == ["baseline"]


def test_a_study_killed_midway_leaves_nothing_and_builds_again(run_cli, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for method in ("baseline", "pix2pix"):
        write_result(runs, method, 0, sample_names=image_names(4))
    study = tmp_path / "study"
    monkeypatch.setattr(study_module, "_write_png", killed_at(3, study_module._write_png))
    with pytest.raises(KeyboardInterrupt):
        build_study([runs], study, catch=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no half study: `--out study` still works
    monkeypatch.setattr(study_module, "_write_png", full_disk)
    code, _, err = run_cli("turing", "--runs", runs, "--out", study, "--catch", "0")
    assert code == 2 and "no space left on device" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    monkeypatch.undo()
    design = build_study([runs], study, catch=0)
    assert (study / "site" / "index.html").is_file() and (study / "design.json").is_file() and design["trials"]
