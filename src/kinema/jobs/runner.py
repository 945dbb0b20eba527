"""Worker processes as seen from the server: start, feed, cancel, kill, restart.

Each :class:`WorkerHandle` owns one ``spawn``-ed process running
:func:`kinema.jobs.worker.worker_main`, a pipe, a shared cancel flag and a reader thread that
forwards every :mod:`~kinema.jobs.events` message to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import threading
from typing import Callable

from kinema.jobs.events import RunJob, WorkerEvent
from kinema.jobs.worker import worker_main
from kinema.settings import Settings

__all__ = ["WorkerHandle"]

log = logging.getLogger("kinema.runner")
_ctx = mp.get_context("spawn")


class WorkerHandle:
    def __init__(
        self,
        index: int,
        settings: Settings,
        loop: asyncio.AbstractEventLoop,
        on_event: Callable[["WorkerHandle", WorkerEvent], None],
        on_exit: Callable[["WorkerHandle"], None],
    ):
        self.index = index
        self.ready = False
        self.job_id: str | None = None
        self._cancel_flag = _ctx.Value("b", 0)
        parent, child = _ctx.Pipe(duplex=True)
        self._conn = parent
        self.proc = _ctx.Process(
            target=worker_main, args=(child, settings, self._cancel_flag), name=f"kinema-worker-{index}", daemon=True
        )
        self.proc.start()
        child.close()
        self._loop = loop
        self._on_event = on_event
        self._on_exit = on_exit
        self._reader = threading.Thread(target=self._read, name=f"kinema-worker-{index}-reader", daemon=True)
        self._reader.start()

    @property
    def idle(self) -> bool:
        return self.ready and self.job_id is None and self.proc.is_alive()

    def _read(self) -> None:
        while True:
            try:
                event = self._conn.recv()
            except (EOFError, OSError):
                break
            self._loop.call_soon_threadsafe(self._on_event, self, event)
        self.proc.join(timeout=5)
        self._loop.call_soon_threadsafe(self._on_exit, self)

    def run(self, job: RunJob) -> None:
        with self._cancel_flag.get_lock():
            self._cancel_flag.value = 0
        self.job_id = job.request_id
        self._conn.send(job)

    def cancel(self) -> None:
        with self._cancel_flag.get_lock():
            self._cancel_flag.value = 1

    def kill(self) -> None:
        if self.proc.is_alive():
            log.warning("killing worker", extra={"pid": self.proc.pid, "request_id": self.job_id})
            self.proc.kill()

    def stop(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.cancel()
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=2)
        self._conn.close()
