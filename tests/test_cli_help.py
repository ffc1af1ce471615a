"""Every command has a description and every option a help line (issue 20): `--help` explains everything."""

from __future__ import annotations

import argparse

from bench.cli import build_parser


def _undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    missing.append(f"{path} {name}: no one-line help in the command list")
                if not sub.description:
                    missing.append(f"{path} {name}: no description")
                missing += _undocumented(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: no help")
    return missing


def test_every_command_and_option_explains_itself():
    assert _undocumented(build_parser(), "bench") == []
