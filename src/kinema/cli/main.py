"""``kinema`` entry point: one sub-command per module, each exposing ``register(subparsers)``.

A sub-command module defines ``register(sub: argparse._SubParsersAction) -> None`` which adds
its parser and sets ``func`` (``(args) -> int``). User errors raise :class:`CliError` and become
a one-line message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kinema import __version__

if TYPE_CHECKING:
    from kinema.settings import Settings

__all__ = ["CliError", "add_database_args", "check_database_url", "check_storage_url", "main"]

#: Sub-command modules, in help order. A module missing here is simply not offered.
COMMANDS = ("serve", "worker", "ray", "keys", "db", "generate", "batch", "remote", "tls")


class CliError(Exception):
    """A user error: printed as ``kinema: error: <message>`` with exit code 2."""


def add_database_args(p: argparse.ArgumentParser, *, storage: bool = True) -> None:
    """``--database-url`` (and ``--storage``): the options every command that opens the stores takes."""
    p.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="postgresql://user:password@host/db shared by several servers and workers"
        " (env KINEMA_DATABASE_URL; default: SQLite in the data dir)",
    )
    if storage:
        p.add_argument(
            "--storage",
            default=None,
            metavar="DIR",
            help="files directory shared by every server and worker (env KINEMA_STORAGE_URL;"
            " default: <data dir>/files)",
        )


def check_database_url(settings: Settings) -> None:
    """A bad ``--database-url`` is a user error, said in one line."""
    from kinema.jobs.backends import is_postgres

    try:
        is_postgres(settings)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def check_storage_url(settings: Settings) -> None:
    """A bad ``s3://`` storage setting (URL, download mode, addressing style, boto3 missing) is a user error,
    said in one line before anything starts. A local directory is not touched here."""
    if not (settings.storage_url or "").startswith("s3://"):
        return
    from kinema.jobs.backends import BackendMissing, open_storage

    try:
        open_storage(settings)  # builds the boto3 client; no request is sent
    except (ValueError, BackendMissing) as exc:
        raise CliError(str(exc)) from None


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


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """The long options of ``parser`` and of its sub-commands' parsers."""
    found: list[str] = []
    for action in parser._actions:
        found += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _options(child)
    return found


def _unrecognized(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> str:
    """argparse's message for unknown arguments, with the closest option of the sub-command for each."""
    import difflib

    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    command = sub.choices.get(getattr(args, "command", None) or "") if sub is not None else None
    known = _options(command if command is not None else parser)
    hints = []
    for token in extra:
        name = token.split("=", 1)[0]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) if name.startswith("--") else []
        if close:
            hints.append(f"{name}: did you mean {close[0]}?")
    return f"unrecognized arguments: {' '.join(extra)}" + (f" ({'; '.join(hints)})" if hints else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(_unrecognized(parser, args, extra))
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        # Imported here: Rich costs ~80 ms at start-up (python -X importtime), paid only when there is an error.
        from kinema.cli.progress import print_error

        print_error(str(exc))
        return 2
    except KeyboardInterrupt:
        print("kinema: interrupted", file=sys.stderr)
        return 130
