"""Where a deployment keeps its jobs, keys and webhook outbox: the one place that chooses the database.

``Settings.database_url`` unset (the default): SQLite in the data dir, one file shared by the
processes of one machine. ``postgresql://…``: PostgreSQL, shared by any number of API servers and
standalone workers. Every command (``serve``, ``worker``, ``keys``, ``db``) opens its stores here.

psycopg is an optional dependency (``pip install 'kinema[postgres]'``): the PostgreSQL modules are
imported inside the functions below, so an SQLite deployment never needs it installed.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from typing import TYPE_CHECKING

from kinema.jobs.feed import ChangeFeed
from kinema.jobs.sqlite_schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from kinema.jobs.sqlite_schema import connect, ensure_schema
from kinema.jobs.sqlite_store import SqliteJobStore
from kinema.jobs.store import JobStore
from kinema.keys import KeyStore, SqlConnection
from kinema.media.storage import FileStorage, OwnUrls
from kinema.settings import Settings

if TYPE_CHECKING:
    from kinema.jobs.pg_sql import PgSqlConnection
    from kinema.media.s3_storage import S3Storage

__all__ = [
    "BackendMissing",
    "describe",
    "is_postgres",
    "open_change_feed",
    "open_job_store",
    "open_keys",
    "open_sql",
    "open_storage",
    "upgrade_schema",
]

_SCHEMES = ("postgresql", "postgres")


class BackendMissing(RuntimeError):
    """``KINEMA_DATABASE_URL`` names PostgreSQL but psycopg is not installed."""


def is_postgres(settings: Settings) -> bool:
    url = settings.database_url
    if not url:
        return False
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"database URL must be postgresql://…, not {scheme or url!r}")
    return True


def describe(settings: Settings) -> str:
    """The database for logs and messages, without its password."""
    if not is_postgres(settings):
        return str(settings.db_path)
    assert settings.database_url is not None
    parts = urllib.parse.urlsplit(settings.database_url)
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401  (only probing that the extra is installed)
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise BackendMissing(
            "KINEMA_DATABASE_URL is a PostgreSQL URL but psycopg is not installed: pip install 'kinema[postgres]'"
        ) from exc


def open_job_store(settings: Settings) -> JobStore:
    """The job store of this deployment; its schema is created or upgraded on the way."""
    if is_postgres(settings):
        _require_psycopg()
        from kinema.jobs.pg_store import PgJobStore  # psycopg: optional, imported only when used

        assert settings.database_url is not None
        return PgJobStore(
            settings.database_url,
            price_per_second=settings.price_per_second,
            pool_size=settings.database_pool_size,
            busy_timeout_s=settings.store_busy_timeout_s,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteJobStore(
        settings.db_path, price_per_second=settings.price_per_second, busy_timeout_s=settings.store_busy_timeout_s
    )


def open_change_feed(settings: Settings, store: JobStore) -> ChangeFeed:
    """LISTEN/NOTIFY on PostgreSQL; polling SQLite's ``data_version`` otherwise."""
    if is_postgres(settings):
        from kinema.jobs.pg_feed import PgChangeFeed  # psycopg: optional

        assert settings.database_url is not None
        return PgChangeFeed(store, settings.database_url)
    return ChangeFeed(store)


def open_sql(settings: Settings) -> sqlite3.Connection | PgSqlConnection:
    """A connection for the webhook outbox and the key store (their SQL runs on both databases)."""
    if is_postgres(settings):
        _require_psycopg()
        from kinema.jobs.pg_sql import PgSqlConnection

        assert settings.database_url is not None
        conn = PgSqlConnection(settings.database_url, timeout_s=settings.store_busy_timeout_s)
        conn.upgrade()
        return conn
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sqlite = connect(settings.db_path)
    sqlite.execute("PRAGMA synchronous=FULL")
    ensure_schema(sqlite)
    return sqlite


def open_keys(settings: Settings, feed: ChangeFeed | None = None) -> KeyStore:
    """The API keys. On PostgreSQL, pass the server's change feed: a key revoked anywhere is then
    forgotten by this server's cache as soon as the change is notified."""
    if is_postgres(settings):
        conn: SqlConnection = open_sql(settings)
        keys = KeyStore(conn=conn)
        subscribe = getattr(feed, "subscribe", None)
        if subscribe is not None:
            subscribe("api_keys", keys.invalidate)
        return keys
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return KeyStore(settings.db_path)


def upgrade_schema(settings: Settings) -> tuple[int, int]:
    """Bring the database's schema up to this kinema's (``kinema db upgrade``); (before, after)."""
    if is_postgres(settings):
        _require_psycopg()
        from kinema.jobs.pg_schema import upgrade
        from kinema.jobs.pg_store import connect as pg_connect

        assert settings.database_url is not None
        conn = pg_connect(settings.database_url, timeout_s=settings.store_busy_timeout_s)
        try:
            return upgrade(conn)
        finally:
            conn.close()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sqlite = connect(settings.db_path)
    try:
        (before,) = sqlite.execute("PRAGMA user_version").fetchone()
        ensure_schema(sqlite)
    finally:
        sqlite.close()
    KeyStore(settings.db_path).close()  # creates the keys table
    return int(before), SQLITE_SCHEMA_VERSION


# -- Files (issue 10, scale-B) ----------------------------------------------------------------------
def open_storage(settings: Settings) -> FileStorage | S3Storage:
    """Where this deployment's files live: ``s3://bucket/prefix`` (boto3, the ``s3`` extra) or a directory."""
    url = settings.storage_url or ""
    if url.startswith("s3://"):
        try:
            from kinema.media.s3_storage import open_s3_storage  # boto3: optional, imported only when used
        except ImportError as exc:
            raise BackendMissing(
                "KINEMA_STORAGE_URL is an s3:// URL but boto3 is not installed: pip install 'kinema[s3]'"
            ) from exc
        return open_s3_storage(settings)
    return FileStorage(settings.files_dir, OwnUrls.of(settings))
