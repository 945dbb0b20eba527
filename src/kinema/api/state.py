"""What the routes share, in one typed holder (``app.state.kinema``), and the gate to the job store.

Store calls never run on the event loop: :class:`StoreGate` runs reads and writes on two small
thread pools of their own, so a database locked by another process (writes wait up to the busy
timeout) freezes neither ``/health`` nor SSE pings, and a queue of stuck writes does not starve
status reads. Each write wakes this process's change feed at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from starlette.requests import Request

from kinema.jobs.dispatcher import Dispatcher
from kinema.jobs.feed import ChangeFeed
from kinema.jobs.store import JobStore
from kinema.jobs.webhooks import WebhookOutbox
from kinema.keys import KeyStore
from kinema.media.storage import FileStorage
from kinema.settings import Settings

__all__ = ["READ_THREADS", "WRITE_THREADS", "AppState", "StoreGate", "app_state"]

P = ParamSpec("P")
T = TypeVar("T")

#: Threads for store reads (status, result, SSE, /requests); each read takes well under a millisecond.
READ_THREADS = 8
#: Threads for store writes (submit, cancel); each may wait up to the busy timeout on a locked database.
WRITE_THREADS = 4


class StoreGate:
    def __init__(self, store: JobStore, feed: ChangeFeed):
        self.store = store
        self.feed = feed
        self._reads = concurrent.futures.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="kinema-store-read")
        self._writes = concurrent.futures.ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="kinema-store-write")

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reads, functools.partial(fn, *args, **kwargs))

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._writes, functools.partial(fn, *args, **kwargs)
            )
        finally:
            self.feed.notify()

    def close(self) -> None:
        self._reads.shutdown(wait=True, cancel_futures=True)
        self._writes.shutdown(wait=True, cancel_futures=True)


@dataclass
class AppState:
    settings: Settings
    store: JobStore
    feed: ChangeFeed
    gate: StoreGate
    storage: FileStorage
    keys: KeyStore
    outbox: WebhookOutbox
    dispatcher: Dispatcher


def app_state(request: Request) -> AppState:
    state = request.app.state.kinema
    if not isinstance(state, AppState):  # pragma: no cover - a wiring bug
        raise TypeError("app.state.kinema is not set up")
    return state
