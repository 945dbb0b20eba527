"""The change feed: wakes waiters (SSE streams, sync ``/run``, the dispatcher) when the store changes.

It works across processes: a task polls the store's :meth:`~kinema.jobs.store.JobStore.change_counter`
(for SQLite ``PRAGMA data_version``, which moves when any other connection commits) every
``interval`` seconds (default 50 ms, inside the ≤ 100 ms the design asks for). Writers in this
process call :meth:`ChangeFeed.notify` to wake waiters at once instead of at the next poll.

Waiters are not told *what* changed; they re-read what they watch::

    version = feed.version
    while not done(store.get(rid)):
        version = await feed.wait(version, timeout=1.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from kinema.errors import StoreUnavailable
from kinema.jobs.store import JobStore

__all__ = ["POLL_INTERVAL_S", "ChangeFeed"]

log = logging.getLogger("kinema.feed")

#: How often the store's change counter is read.
POLL_INTERVAL_S = 0.05


class ChangeFeed:
    def __init__(self, store: JobStore, interval: float = POLL_INTERVAL_S):
        if not 0 < interval <= 0.1:
            raise ValueError("the change feed polls at most every 100 ms")
        self._store = store
        self._interval = interval
        self._version = 0
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def version(self) -> int:
        """Moves on every observed change; pass it to :meth:`wait`."""
        return self._version

    @property
    def closed(self) -> bool:
        """True once :meth:`stop` ran: loops that wait on the feed should end."""
        return self._closed

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._task = asyncio.create_task(self._poll(), name="kinema-change-feed")

    async def stop(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._bump()  # release every waiter

    async def wait(self, since: int, timeout: float | None = None) -> int:
        """Wait until the version moves past ``since`` (or ``timeout``); returns the current version."""
        if self._version != since or self._event is None:
            return self._version
        event = self._event
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel that meets its
        # timeout, and a cancelled waiter must stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
        return self._version

    def notify(self) -> None:
        """Something in this process changed the store: wake waiters now (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == getattr(loop, "_thread_id", None):
            self._bump()
        else:
            loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self._version += 1
        if self._event is not None:
            old, self._event = self._event, asyncio.Event()
            old.set()

    async def _poll(self) -> None:
        last: int | None = None
        while True:
            try:
                counter = await asyncio.to_thread(self._store.change_counter)
            except StoreUnavailable as exc:
                log.warning("change feed: %s", exc)
                self._bump()  # changes cannot be seen now: treat it as one (read caches start over)
            except Exception:  # the feed must outlive any one bad read: waiters and read caches rely on it
                log.exception("change feed: reading the change counter failed")
                self._bump()
            else:
                if last is not None and counter != last:
                    self._bump()
                last = counter
            await asyncio.sleep(self._interval)
