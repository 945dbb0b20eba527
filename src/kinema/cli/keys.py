"""``kinema keys create|list|revoke``: manage API keys in the deployment's database (data dir or PostgreSQL)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kinema.cli.main import CliError, add_database_args, check_database_url
from kinema.errors import StoreUnavailable
from kinema.keys import KeyStore
from kinema.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="manage API keys")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION")
    ks.required = True
    c = ks.add_parser("create", help="create a key and print it (alone on the last line)")
    c.add_argument("--data-dir", type=Path, default=None)
    c.add_argument("--label", default=None)
    add_database_args(c, storage=False)
    c.set_defaults(func=create)
    ls = ks.add_parser("list", help="list key ids")
    ls.add_argument("--data-dir", type=Path, default=None)
    add_database_args(ls, storage=False)
    ls.set_defaults(func=list_keys)
    r = ks.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    r.add_argument("--data-dir", type=Path, default=None)
    add_database_args(r, storage=False)
    r.set_defaults(func=revoke)


def _store(args: argparse.Namespace) -> tuple[Settings, KeyStore]:
    from kinema.jobs.backends import BackendMissing, open_keys

    settings = Settings.from_env().replace(data_dir=args.data_dir, database_url=args.database_url)
    check_database_url(settings)
    try:
        return settings, open_keys(settings)
    except (StoreUnavailable, BackendMissing) as exc:
        raise CliError(str(exc)) from None


def create(args: argparse.Namespace) -> int:
    from kinema.jobs.backends import describe

    settings, store = _store(args)
    key = store.create(args.label)
    print(f"Created an API key in {describe(settings)}. Use it as 'Authorization: Key <key>' or FAL_KEY=<key>:")
    print(key)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    _, store = _store(args)
    for k in store.list():
        print(f"{k.id}\t{k.label or ''}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    _, store = _store(args)
    if not store.revoke(args.key_id):
        raise CliError(f"no such key: {args.key_id}")
    print(f"revoked {args.key_id}")
    return 0
