"""The change feed on PostgreSQL: ``LISTEN kinema_changes`` instead of polling.

Same interface as :class:`~kinema.jobs.feed.ChangeFeed` (``start``, ``stop``, ``version``,
``wait``, ``notify``), so SSE streams, sync ``/run``, the webhook outbox and the dispatcher use
either unchanged. Every committed change to the store's tables sends a notification (a trigger,
:mod:`kinema.jobs.pg_schema`), so a submit on one server wakes the dispatchers of every server
and worker, and a completion wakes the SSE streams and sync waiters on every server, at commit
rather than at the next poll.

The listening connection is the feed's own. When it breaks (PostgreSQL restarted, network cut)
the feed bumps its version (waiters re-read: changes may have been missed), and reconnects with a
back-off from 0.1 s up to 2 s, for as long as it takes. An idle connection is pinged every
:data:`PING_S` so a silently dead one is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg

from kinema.jobs.feed import ChangeFeed
from kinema.jobs.pg_schema import CHANNEL
from kinema.jobs.store import JobStore

__all__ = ["PING_S", "PgChangeFeed"]

log = logging.getLogger("kinema.feed")

#: An idle listening connection is checked this often.
PING_S = 5.0
_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)


class PgChangeFeed(ChangeFeed):
    def __init__(self, store: JobStore, url: str):
        super().__init__(store)
        self._url = url
        #: Set once LISTEN is in place (tests and ``kinema worker`` wait for it before relying on wake-ups).
        self.listening = asyncio.Event()
        self._subscribers: dict[str, list[Callable[[], None]]] = {}

    def subscribe(self, table: str, fn: Callable[[], None]) -> None:
        """Call ``fn`` (on the event loop) whenever ``table`` changed, and after every reconnect."""
        self._subscribers.setdefault(table, []).append(fn)

    def _changed(self, table: str | None) -> None:
        for fn in self._subscribers.get(table, []) if table else [f for fs in self._subscribers.values() for f in fs]:
            try:
                fn()
            except Exception:
                log.exception("change feed subscriber failed")
        self._bump()

    async def _poll(self) -> None:
        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, connect_timeout=5)
            except psycopg.Error as exc:
                self._lost(exc, failures)
                await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)])
                failures += 1
                continue
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                if failures:
                    log.info("change feed: listening again")
                    self._changed(None)  # anything may have changed while we were away
                failures = 0
                self.listening.set()
                while True:
                    got = False
                    async for note in conn.notifies(timeout=PING_S):
                        got = True
                        self._changed(note.payload)
                    if not got:
                        await conn.execute("SELECT 1")
            except psycopg.Error as exc:
                self.listening.clear()
                self._lost(exc, failures)
                self._changed(None)
                failures += 1
                await asyncio.sleep(_BACKOFF_S[0])
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    @staticmethod
    def _lost(exc: Exception, failures: int) -> None:
        if failures == 0:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("change feed: lost the database (%s); reconnecting", first)
