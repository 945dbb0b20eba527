"""``kinema keys create|list|revoke``: manage API keys in the deployment's database (data dir or PostgreSQL).

Only ``create`` makes a key store; ``list`` and ``revoke`` on a directory without one say so instead of
creating an empty store there (a mistyped ``--data-dir`` must not look like a store with no keys).
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kinema.cli.main import CliError, add_database_args, check_database_url
from kinema.errors import StoreUnavailable
from kinema.settings import Settings

if TYPE_CHECKING:
    from kinema.keys import KeyStore

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("keys", help="manage API keys")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION")
    ks.required = True
    c = ks.add_parser("create", help="create a key and print it (alone on the last line)")
    c.add_argument("--data-dir", type=Path, default=None, help="data directory (env KINEMA_DATA_DIR)")
    c.add_argument("--label", default=None, help="a name for the key, shown by 'kinema keys list'")
    c.add_argument(
        "--if-none",
        action="store_true",
        help="create a key only if the store has none; otherwise name the existing key(s) and exit 0",
    )
    add_database_args(c, storage=False)
    c.set_defaults(func=create)
    ls = ks.add_parser("list", help="list keys: id, creation time, label")
    ls.add_argument("--data-dir", type=Path, default=None, help="data directory (env KINEMA_DATA_DIR)")
    add_database_args(ls, storage=False)
    ls.set_defaults(func=list_keys)
    r = ks.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    r.add_argument("--data-dir", type=Path, default=None, help="data directory (env KINEMA_DATA_DIR)")
    add_database_args(r, storage=False)
    r.set_defaults(func=revoke)


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env().replace(data_dir=args.data_dir, database_url=args.database_url)
    check_database_url(settings)
    return settings


def _open(settings: Settings) -> KeyStore:
    # Imported here: the backends pull in the job store (~130 ms), which every other command would pay.
    from kinema.jobs.backends import BackendMissing, open_keys

    try:
        return open_keys(settings)
    except (StoreUnavailable, BackendMissing) as exc:
        raise CliError(str(exc)) from None


def _existing_store(args: argparse.Namespace) -> KeyStore:
    settings = _settings(args)
    if settings.database_url is None and not settings.db_path.is_file():
        where = "does not exist" if not settings.data_dir.exists() else f"has no key store ({settings.db_path.name})"
        raise CliError(
            f"{settings.data_dir} {where}: check --data-dir, or create a key with "
            f"'kinema keys create --data-dir {shlex.quote(str(settings.data_dir))}'"
        )
    return _open(settings)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def create(args: argparse.Namespace) -> int:
    from kinema.jobs.backends import describe

    settings = _settings(args)
    if settings.database_url is None:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create {settings.data_dir}: {exc.strerror or exc}") from None
    store = _open(settings)
    try:
        existing = store.list() if args.if_none else []
        if existing:
            ids = ", ".join(k.id for k in existing)
            print(
                f"{describe(settings)} already has {len(existing)} API key(s): {ids} (secrets are shown only "
                "when a key is created; 'kinema keys create' makes another). No key created."
            )
            return 0
        key = store.create(args.label)
    finally:
        store.close()
    print(f"Created an API key in {describe(settings)}. Use it as 'Authorization: Key <key>' or FAL_KEY=<key>:")
    print(key)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    store = _existing_store(args)
    try:
        keys = store.list()
    finally:
        store.close()
    for k in keys:
        print(f"{k.id}\t{_when(k.created_at)}\t{k.label or ''}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    store = _existing_store(args)
    try:
        if not store.revoke(args.key_id):
            raise CliError(f"no such key: {args.key_id}")
    finally:
        store.close()
    print(f"revoked {args.key_id}")
    return 0
