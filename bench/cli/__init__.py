"""The ``bench`` command line: the top-level parser and ``main``; each command lives in its module."""

from __future__ import annotations

import argparse
import sys

from bench import __version__
from bench.cli.colorize import add_colorize_parser
from bench.cli.common import EXAMPLES
from bench.cli.manage import add_index_parser, add_list_parser, add_new_method_parser, add_weights_parser
from bench.cli.report import add_report_parser, add_score_parser
from bench.cli.reproduce import add_reproduce_parser
from bench.cli.run import add_run_parser
from bench.store.atomic import os_reason
from bench.cli.turing import add_turing_parser
from bench.errors import BenchError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="colorbench: train colorization methods under equal budgets, score them, publish leaderboards.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"colorbench {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in (add_list_parser, add_run_parser, add_score_parser, add_report_parser, add_colorize_parser,
                       add_index_parser, add_new_method_parser, add_weights_parser, add_turing_parser,
                       add_reproduce_parser):
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `bench run --gpus N` starts itself again under torchrun
    from bench.progress import console, set_quiet

    set_quiet(args.quiet)
    try:
        return args.func(args)
    except BenchError as error:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    except OSError as error:  # a full disk, a file gone or not allowed: one line, finished results stay
        where = f" ({error.filename})" if error.filename else ""
        console.print(f"error: {os_reason(error)}{where}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
