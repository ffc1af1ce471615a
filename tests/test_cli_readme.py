"""The README's commands and every `--help` example: each one parses, the paths they name exist after the
README's own demo command has run, and the README's follow-up commands run on what its commands made.

By default the demo is shrunk by appended options (two methods, one seed: argparse keeps the last value), which
is what the suite can afford; with ``COLORBENCH_README_VERBATIM=1`` (set by ``.ci/run``) it runs exactly as the
README prints it. The README's later commands name `runs/flowers/...`: flowers at a 15-minute budget cannot train in
a test, so they run on the demo's dataset, `sample`, at the demo's size and budget -- same commands, same layout.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
from pathlib import Path

import pytest

from bench.cli import build_parser
from tests.helpers import write_photos

README = Path(__file__).resolve().parents[1] / "README.md"
VERBATIM = os.environ.get("COLORBENCH_README_VERBATIM") == "1"
SHRINK = () if VERBATIM else ("--methods", "baseline,pix2pix", "--seeds", "1")


def shell_lines(block: str) -> list[str]:
    """A fenced block's lines with backslash continuations joined."""
    return block.replace("\\\n", " ").splitlines()


def bench_argv(line: str) -> list[list[str]]:
    """The `bench ...` commands in one shell line (after `&&`, `srun`, `python -m`), as argv without `bench`."""
    commands = []
    for part in re.split(r"&&|;|\|\|", line):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            continue
        for i, word in enumerate(words):
            if word == "bench" and (i == 0 or words[i - 1] in ("srun", "-m")):
                commands.append([w.rstrip("&") for w in words[i + 1:] if w != "&"])
                break
    return commands


def readme_blocks() -> list[str]:
    return re.findall(r"```(?:bash|sh)\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def readme_commands() -> list[list[str]]:
    return [argv for block in readme_blocks() for line in shell_lines(block) for argv in bench_argv(line)]


def help_texts() -> dict[str, str]:
    """`bench --help` and every `bench <command> --help`, as printed."""
    parser = build_parser()
    texts = {"bench": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                texts[f"bench {name}"] = sub.format_help()
    return texts


def help_commands() -> list[list[str]]:
    """The example lines (those that start with `bench `), not commands quoted in prose."""
    return [argv for text in help_texts().values() for line in text.splitlines()
            if line.strip().startswith("bench ") for argv in bench_argv(line.strip())]


def test_the_readme_and_help_show_commands():
    """Guards the extraction itself: a parser that found nothing would pass every test below."""
    readme, helps = readme_commands(), help_commands()
    assert ["run", "--methods", "all", "--dataset", "sample", "--size", "32", "--budget", "smoke"] in readme
    assert ["report", "--runs", "runs", "--out", "site"] in readme
    assert len(readme) >= 20 and len(helps) >= 10
    assert any(argv[0] == "colorize" for argv in helps)


@pytest.mark.parametrize("argv", readme_commands() + help_commands(), ids=" ".join)
def test_every_command_shown_parses(argv):
    try:
        build_parser().parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"`bench {' '.join(argv)}` is shown but does not parse (exit {stop.code})")


def test_every_source_path_the_readme_names_exists():
    """`bench/evaluation/test_split.py`, `reports/`, `tests/test_report_stats.py`: a move updates the README too."""
    root = README.parent
    named = set(re.findall(r"(?<![\w./-])((?:bench|reports|datasets|methods|tests|\.ci)/[\w./-]*[\w/])",
                           README.read_text(encoding="utf-8")))
    assert len(named) >= 30
    assert sorted(p for p in named if not (root / p).exists()) == []


def shown_run_paths() -> set[str]:
    """Every relative `runs/...` path the README and `--help` show (absolute cluster paths excluded)."""
    texts = [README.read_text(encoding="utf-8"), *help_texts().values()]
    return {m.rstrip("/.,") for text in texts for m in re.findall(r"(?<![\w/.$-])runs/[\w./<>*-]+", text)}


def as_glob(path: str) -> str:
    """`runs/flowers/pix2pix/256px-900s-<hash>/seed0` -> `runs/sample/pix2pix/*px-*-*/seed0`."""
    parts = path.split("/")
    if len(parts) > 1 and parts[1] == "flowers":
        parts[1] = "sample"
    if len(parts) > 3:
        parts[3] = "*px-*-*"  # size, budget and config hash: the README's run is at 256 px and 15 min
    return "/".join(parts).replace("<hash>", "*")


def readme_command(*first_words: str) -> list[str]:
    """The first README command starting with these words (fails if the README lost it)."""
    for argv in readme_commands():
        if tuple(argv[:len(first_words)]) == first_words:
            return argv
    pytest.fail(f"the README no longer shows `bench {' '.join(first_words)} ...`")


def on_sample(argv: list[str]) -> list[str]:
    """The command on the `sample` dataset instead of flowers."""
    return ["sample" if word == "flowers" else word.replace("runs/flowers/", "runs/sample/") for word in argv]


def test_the_paths_shown_exist_after_the_readmes_demo(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = readme_command("run", "--methods", "all", "--dataset", "sample")
    code, _, err = run_cli(*demo, *SHRINK, "--device", "cpu")
    assert code == 0, err
    code, _, err = run_cli(*readme_command("report", "--runs", "runs", "--out", "site"))
    assert code == 0, err
    assert (tmp_path / "site" / "index.html").is_file()

    ran = {"baseline", "pix2pix"} if SHRINK else None
    checked = 0
    for path in sorted(shown_run_paths()):
        pattern = as_glob(path)
        method = pattern.split("/")[2] if pattern.count("/") >= 2 else None
        if ran is not None and method is not None and method not in ran:
            continue
        assert glob.glob(pattern), f"{path} is shown, but after the README's commands nothing matches {pattern}"
        checked += 1
    assert checked >= 4
    code, out, err = run_cli(*readme_command("reproduce", "runs/sample/baseline"))
    assert code == 0, err or out


def test_the_colorize_sections_commands_chain(run_cli, tmp_path, monkeypatch):
    """"Colorize your own photos": its one-seed run (at the demo's size and budget), then its colorize and score
    commands as printed."""
    monkeypatch.chdir(tmp_path)
    train = on_sample(readme_command("run", "--methods", "pix2pix", "--dataset", "flowers", "--seeds", "1"))
    code, _, err = run_cli(*train, "--size", "32", "--budget", "smoke", "--device", "cpu")
    assert code == 0, err
    write_photos(tmp_path / "scans", ["a.jpg", "b.png"])
    write_photos(tmp_path / "my_photos", ["photo.jpg", "beach.png"])
    write_photos(tmp_path, ["old_photo.jpg"])
    for first_words in (("colorize", "--checkpoint", "runs/flowers/pix2pix", "old_photo.jpg"),
                        ("colorize", "--checkpoint", "runs/flowers/pix2pix", "my_photos/"),
                        ("score", "--pred", "colorized/")):
        code, out, err = run_cli(*on_sample(readme_command(*first_words)))
        assert code == 0, f"`bench {' '.join(first_words)} ...`: {err or out}"
    assert (tmp_path / "colorized" / "photo.jpg.png").is_file()
    assert (tmp_path / "colorized" / "old_photo.jpg.png").is_file()
    assert (tmp_path / "colorized" / "a.jpg.png").is_file()
