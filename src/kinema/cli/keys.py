"""``kinema keys create|list|revoke``: manage API keys in the data dir."""

from __future__ import annotations

import argparse
from pathlib import Path

from kinema.cli.main import CliError
from kinema.settings import Settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="manage API keys")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION")
    ks.required = True
    c = ks.add_parser("create", help="create a key and print it (alone on the last line)")
    c.add_argument("--data-dir", type=Path, default=None)
    c.add_argument("--label", default=None)
    c.set_defaults(func=create)
    ls = ks.add_parser("list", help="list key ids")
    ls.add_argument("--data-dir", type=Path, default=None)
    ls.set_defaults(func=list_keys)
    r = ks.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    r.add_argument("--data-dir", type=Path, default=None)
    r.set_defaults(func=revoke)


def _store(args: argparse.Namespace):
    from kinema.keys import KeyStore

    settings = Settings.from_env().replace(data_dir=args.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings, KeyStore(settings.db_path)


def create(args: argparse.Namespace) -> int:
    settings, store = _store(args)
    key = store.create(args.label)
    print(f"Created an API key in {settings.data_dir}. Use it as 'Authorization: Key <key>' or FAL_KEY=<key>:")
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
