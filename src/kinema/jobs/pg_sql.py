"""A PostgreSQL connection that runs the portable SQL of the SQLite-era modules unchanged.

The webhook outbox (:mod:`kinema.jobs.webhooks`) and the key store (:mod:`kinema.keys`) speak
``sqlite3``'s small interface: ``execute(sql, params)`` with ``?`` placeholders, explicit
``BEGIN IMMEDIATE``/``COMMIT``/``ROLLBACK``, a cursor with ``fetchone``/``fetchall``/``rowcount``.
Their SQL is otherwise standard, so :class:`PgSqlConnection` maps just those few forms onto
psycopg: ``?`` → ``%s``, ``BEGIN IMMEDIATE`` → ``BEGIN``, ``last_insert_rowid()`` → ``lastval()``,
``PRAGMA …`` → nothing (SQLite tuning has no PostgreSQL meaning).

It holds one connection, used under its owner's lock as a ``sqlite3`` connection is. A broken
connection (PostgreSQL restarted) is replaced at the next statement outside a transaction; until
the database answers again each statement raises :class:`~kinema.errors.StoreUnavailable`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg

from kinema.jobs.pg_schema import upgrade
from kinema.jobs.pg_store import Conn, connect, translate_error

__all__ = ["PgSqlConnection"]

_QMARK = re.compile(r"\?")


class _Rows:
    """A cursor's results, read while the statement's connection was held."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)


class PgSqlConnection:
    def __init__(self, url: str, *, timeout_s: float = 10.0):
        self._url = url
        self._timeout_s = timeout_s
        self._conn: Conn | None = connect(url, timeout_s=timeout_s)
        self._in_tx = False

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._in_tx:
                raise translate_error(psycopg.OperationalError("the connection broke inside a transaction"))
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._conn = connect(self._url, timeout_s=self._timeout_s)
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        head = sql.lstrip().upper()
        if head.startswith("PRAGMA"):
            return _Rows([], 0)
        begin = head.startswith("BEGIN")
        if begin:
            sql = "BEGIN"
        elif head.startswith(("COMMIT", "ROLLBACK")):
            self._in_tx = False
        sql = _QMARK.sub("%s", sql.replace("last_insert_rowid()", "lastval()"))
        try:
            cur = self._connection().execute(sql, tuple(params) or None)
            rows = cur.fetchall() if cur.description is not None else []
            self._in_tx = self._in_tx or begin
            return _Rows(rows, cur.rowcount)
        except psycopg.Error as exc:
            if head.startswith("ROLLBACK"):
                return _Rows([], 0)  # the transaction died with its connection
            raise translate_error(exc) from exc

    def upgrade(self) -> None:
        """Apply the schema migrations (the outbox's and keys' tables are part of them)."""
        try:
            upgrade(self._connection())
        except psycopg.Error as exc:
            raise translate_error(exc) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
