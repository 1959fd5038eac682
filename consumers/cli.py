"""``tapewatch`` command line: one subcommand per module, registered here.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed namespace and returning an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from signals.errors import TapewatchError

from .options import add_option

#: Modules that provide subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "consumers.replay",    # replay, demo
    "consumers.publish",   # publish
    "consumers.service",   # run
    "consumers.status",    # status
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tapewatch",
        description="Streaming regime monitor for market data: steady one-sided flow, momentum bursts, deleveraging.",
    )
    add_option(parser, "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
               help="log verbosity")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:      # command not built yet
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except TapewatchError as e:
        print(f"tapewatch: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TapewatchError as e:
        print(f"tapewatch: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
