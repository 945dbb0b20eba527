"""API keys: ``<key_id>:<secret>``, secrets stored as salted SHA-256 hashes in the database."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kinema.jobs.sqlite_schema import connect

__all__ = ["KeyStore", "ApiKey", "parse_authorization"]

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
    def __init__(self, db_path: Path):
        self._conn = connect(db_path)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        #: Verified (id, secret) pairs; keeps the status hot path free of hashing. Emptied whenever
        #: the database changed under another connection (e.g. ``kinema keys revoke`` elsewhere).
        self._verified: dict[tuple[str, str], str] = {}
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
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._verified.clear()
                self._data_version = version
            cached = self._verified.get(parsed)
            if cached is not None:
                return cached
            row = self._conn.execute(
                "SELECT salt, secret_hash FROM api_keys WHERE id=? AND revoked=0", (key_id,)
            ).fetchone()
        if row is None or not hmac.compare_digest(_hash(row[0], secret), row[1]):
            return None
        self._verified[parsed] = key_id
        return key_id

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, label, created_at FROM api_keys WHERE revoked=0 ORDER BY created_at"
            ).fetchall()
        return [ApiKey(*r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("UPDATE api_keys SET revoked=1 WHERE id=?", (key_id,))
        self._verified = {k: v for k, v in self._verified.items() if v != key_id}
        return cur.rowcount > 0

    def close(self) -> None:
        self._conn.close()
