"""``kinema`` entry point: one sub-command per module, each exposing ``register(subparsers)``.

A sub-command module defines ``register(sub: argparse._SubParsersAction) -> None`` which adds
its parser and sets ``func`` (``(args) -> int``). User errors raise :class:`CliError` and become
a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from kinema import __version__

__all__ = ["main", "CliError"]

#: Sub-command modules, in help order. A module missing here is simply not offered.
COMMANDS = ("serve", "keys", "generate", "batch", "remote", "tls")


class CliError(Exception):
    """A user error: printed as ``kinema: error: <message>`` with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinema", description="Kling 1.0 image-to-video, self-hosted.")
    parser.add_argument("--version", action="version", version=f"kinema {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"kinema.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"kinema.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        from kinema.cli.progress import print_error  # Rich is imported only when there is something to draw

        print_error(str(exc))
        return 2
    except KeyboardInterrupt:
        print("kinema: interrupted", file=sys.stderr)
        return 130
