"""API keys: ``<key_id>:<secret>``, secrets stored as salted SHA-256 hashes in the database.

The SQL is portable: the same statements run on SQLite (the data dir) and on PostgreSQL (through
:class:`~kinema.jobs.pg_sql.PgSqlConnection`; the table comes from its migrations). Open the store
of a deployment with :func:`kinema.jobs.backends.open_keys`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kinema.jobs.sqlite_schema import connect

__all__ = ["CACHE_TTL_S", "ApiKey", "KeyStore", "SqlConnection", "parse_authorization"]

#: Without SQLite's ``data_version``, the cache of verified keys is emptied by the change feed when
#: ``api_keys`` changes (a revoke anywhere); as a safety net an entry is trusted at most this long.
CACHE_TTL_S = 30.0


class SqlConnection(Protocol):
    """What the key store needs of a connection (``sqlite3.Connection`` and ``PgSqlConnection``)."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    salt TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    label TEXT,
    created_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class ApiKey:
    id: str
    label: str | None
    created_at: float


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + ":" + secret).encode()).hexdigest()


def parse_authorization(header: str | None) -> tuple[str, str] | None:
    """``Key <id>:<secret>`` → (id, secret); anything else → None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "key" or ":" not in value:
        return None
    key_id, _, secret = value.strip().partition(":")
    if not key_id or not secret:
        return None
    return key_id, secret


class KeyStore:
    def __init__(self, db_path: Path | None = None, *, conn: SqlConnection | None = None):
        if conn is None:
            if db_path is None:
                raise TypeError("KeyStore needs a db_path or a connection")
            sqlite = connect(db_path)
            sqlite.executescript(_SCHEMA)
            conn = sqlite
        self._conn: SqlConnection = conn
        #: SQLite tells us when another connection changed the database; elsewhere the cache expires.
        self._versioned = isinstance(conn, sqlite3.Connection)
        self._lock = threading.Lock()
        #: Verified (id, secret) pairs → (key id, when verified); keeps the status hot path free of
        #: hashing and queries. Emptied whenever the database changed under another connection
        #: (e.g. ``kinema keys revoke`` elsewhere); entries expire after CACHE_TTL_S where that cannot be seen.
        self._verified: dict[tuple[str, str], tuple[str, float]] = {}
        self._data_version = -1

    def create(self, label: str | None = None) -> str:
        """Create a key and return it whole (``id:secret``); only its hash is stored."""
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(24)
        salt = secrets.token_hex(8)
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_keys (id, salt, secret_hash, label, created_at) VALUES (?,?,?,?,?)",
                (key_id, salt, _hash(salt, secret), label, time.time()),
            )
        return f"{key_id}:{secret}"

    def verify(self, header: str | None) -> str | None:
        """The key id for a valid ``Authorization`` header, else None."""
        parsed = parse_authorization(header)
        if parsed is None:
            return None
        key_id, secret = parsed
        with self._lock:
            now = time.monotonic()
            if self._versioned:
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
                if version != self._data_version:
                    self._verified.clear()
                    self._data_version = version
            cached = self._verified.get(parsed)
            if cached is not None and (self._versioned or now - cached[1] < CACHE_TTL_S):
                return cached[0]
            row = self._conn.execute(
                "SELECT salt, secret_hash FROM api_keys WHERE id=? AND revoked=0", (key_id,)
            ).fetchone()
        if row is None or not hmac.compare_digest(_hash(row[0], secret), row[1]):
            return None
        self._verified[parsed] = (key_id, now)
        return key_id

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, label, created_at FROM api_keys WHERE revoked=0 ORDER BY created_at"
            ).fetchall()
        return [ApiKey(r[0], r[1], float(r[2])) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("UPDATE api_keys SET revoked=1 WHERE id=?", (key_id,))
        self._verified = {k: v for k, v in self._verified.items() if v[0] != key_id}
        return bool(cur.rowcount > 0)

    def invalidate(self) -> None:
        """Forget every verified key (the keys changed elsewhere)."""
        with self._lock:
            self._verified.clear()

    def close(self) -> None:
        self._conn.close()
