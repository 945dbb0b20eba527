"""``kinema db upgrade|version``: the database schema (SQLite in the data dir, or PostgreSQL).

Servers and workers apply missing migrations themselves when they start (two at once is safe:
PostgreSQL migrations run under an advisory lock). ``kinema db upgrade`` does it ahead of a
rolling deployment, so the new servers start against a ready schema.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kinema.cli.main import CliError, add_database_args, check_database_url
from kinema.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("db", help="database schema: upgrade")
    ds = p.add_subparsers(dest="db_command", metavar="ACTION")
    ds.required = True
    u = ds.add_parser("upgrade", help="apply the missing schema migrations")
    u.add_argument("--data-dir", type=Path, default=None)
    add_database_args(u, storage=False)
    u.set_defaults(func=upgrade)


def upgrade(args: argparse.Namespace) -> int:
    from kinema.errors import StoreUnavailable
    from kinema.jobs.backends import BackendMissing, describe, upgrade_schema

    settings = Settings.from_env().replace(data_dir=args.data_dir, database_url=args.database_url)
    check_database_url(settings)
    try:
        before, after = upgrade_schema(settings)
    except (StoreUnavailable, BackendMissing, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    where = describe(settings)
    if before == after:
        print(f"{where}: schema version {after}, up to date")
    else:
        print(f"{where}: schema version {before} -> {after}")
    return 0
