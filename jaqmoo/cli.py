"""Command-line entry point: ``jaqmoo <command> ...``.

Each command lives in its own module under :mod:`jaqmoo.commands` exposing
``register(subparsers)``; that function adds its parser and sets ``func`` (called with
the parsed namespace, returning an exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from jaqmoo import __version__
from jaqmoo.commands import strict_numbers
from jaqmoo.errors import JaqmooError

COMMAND_MODULES = [
    "jaqmoo.commands.timeloop",
    "jaqmoo.commands.cost",
    "jaqmoo.commands.supernet",
    "jaqmoo.commands.search",
    "jaqmoo.commands.sweep",
    "jaqmoo.commands.report",
    "jaqmoo.commands.reference",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaqmoo",
        description="Joint quantization / mapping / hardware search for CNN accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"jaqmoo {__version__}",
                        help="print jaqmoo's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name == module_name:
                continue
            raise
        module.register(sub)
    strict_numbers(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except JaqmooError as exc:
        print(f"jaqmoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaqmoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
