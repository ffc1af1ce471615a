"""What a result records of its environment, and the one-line warning outside the tested versions."""

from __future__ import annotations

import pytest

from bench import environment, progress
from bench.tf32 import restore_tf32, save_tf32, set_tf32, tf32_disabled, tf32_enabled


def test_tested_ranges_come_from_the_installed_metadata():
    names = {r.name for r in environment.requirements()}
    assert {"torch", "torchvision", "timm", "lpips", "pytorch-fid"} <= names
    torch_range = next(r for r in environment.requirements() if r.name == "torch").specifier
    assert any(s.operator == "<" for s in torch_range)  # an upper bound below the next untested minor
    assert environment.untested_packages() == []  # the suite itself runs inside the tested ranges


def test_versions_outside_the_range_are_named_in_one_line(monkeypatch, run_cli, capsys):
    real = environment.installed_version
    monkeypatch.setattr(environment, "installed_version",
                        lambda name: {"torch": "99.0.0", "timm": "0.1.0"}.get(name) or real(name))
    assert [line.split(" (")[0] for line in environment.untested_packages()] == ["torch 99.0.0", "timm 0.1.0"]
    warning = environment.untested_warning()
    assert "\n" not in warning and "torch 99.0.0 (tested " in warning and "timm 0.1.0" in warning

    monkeypatch.setattr(progress, "_quiet", False)
    code, _, err = run_cli("run", "--methods", "baseline", "--dataset", "sample", "--metrics", "no-such-metric")
    assert code == 2  # refused after the warning was given
    assert err.count("running with untested versions: torch 99.0.0") == 1


def test_tf32_switches_work_with_this_torch():
    """Only the API this torch has is touched: on, off and restored, read back as (matmul, cuDNN)."""
    saved = save_tf32()
    try:
        set_tf32(True)
        assert tf32_enabled() == (True, True)
        with tf32_disabled():
            assert tf32_enabled() == (False, False)
        assert tf32_enabled() == (True, True)
    finally:
        restore_tf32(saved)
    assert save_tf32() == saved


@pytest.mark.parametrize("name", ["torch", "lpips", "pytorch-fid"])
def test_installed_versions_are_found_by_distribution_name(name):
    assert environment.installed_version(name)
