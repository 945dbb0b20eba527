"""A worker process as the dispatcher sees it: spawn, state, commands, kill.

Each :class:`WorkerProcess` owns one ``spawn``-ed process running
:func:`kinema.jobs.worker.worker_main`, one end of a duplex pipe and a reader thread that hands
every :mod:`~kinema.jobs.events` message to the event loop. Its :class:`WorkerState` moves only
through :func:`~kinema.jobs.states.check_worker_transition`: STARTING → READY (engine loaded) ⇄
BUSY, and → DEFUNCT (load failure, or the process is gone). No shared-memory flags or locks
cross the boundary (cancellation is a message), so nothing is left for the resource tracker
to report as leaked at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

from kinema.jobs.events import Cancel, Command, RunJob, Shutdown, WorkerEvent
from kinema.jobs.states import WorkerState, check_worker_transition
from kinema.jobs.worker import worker_main
from kinema.settings import Settings

__all__ = ["WorkerProcess", "new_worker_id", "sweep_dead_work_dirs"]

log = logging.getLogger("kinema.runner")
_ctx = mp.get_context("spawn")
_counter = 0


def new_worker_id(index: int) -> str:
    """Unique across processes and machines sharing a store: ``host-pid-index-n``."""
    global _counter
    _counter += 1
    return f"{socket.gethostname()}-{os.getpid()}-{index}-{_counter}"


def sweep_dead_work_dirs(root: Path) -> None:
    """Remove the work folders (named by :func:`new_worker_id`) of this host's processes that are gone
    (``kill -9`` of a server, a worker or a Ray actor), and partial MP4s of the old flat layout."""
    if not root.is_dir():
        return
    host = socket.gethostname()
    for folder in root.iterdir():
        if folder.is_file() and folder.suffix == ".mp4":  # the old layout's partial outputs
            folder.unlink(missing_ok=True)
            continue
        rest = folder.name[len(host) + 1 :] if folder.name.startswith(host + "-") else ""
        pid = rest.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerProcess:
    """One worker process and its state; methods are called on the event loop's thread."""

    def __init__(
        self,
        index: int,
        settings: Settings,
        loop: asyncio.AbstractEventLoop,
        on_event: Callable[[WorkerProcess, WorkerEvent], None],
        on_exit: Callable[[WorkerProcess], None],
    ):
        self.index = index
        self.id = new_worker_id(index)
        self.device = settings.device_for(index)
        self.state = WorkerState.STARTING
        self.reason: str | None = None
        self.job_id: str | None = None
        self.cancel_sent = False
        self.started_at = time.monotonic()
        self.load_s: float | None = None
        parent, child = _ctx.Pipe(duplex=True)
        self._conn = parent
        self.proc: BaseProcess = _ctx.Process(
            target=worker_main,
            args=(child, settings, self.id, self.device),
            name=f"kinema-worker-{index}",
            daemon=True,
        )
        self.proc.start()
        child.close()
        self._loop = loop
        self._on_event = on_event
        self._on_exit = on_exit
        self._reader = threading.Thread(target=self._read, name=f"kinema-worker-{index}-reader", daemon=True)
        self._reader.start()

    # State --------------------------------------------------------------------------------
    def move(self, new: WorkerState, reason: str | None = None) -> None:
        if new is self.state:
            return
        check_worker_transition(self.state, new)
        self.state = new
        if reason is not None:
            self.reason = reason

    @property
    def ready(self) -> bool:
        return self.state is WorkerState.READY and self.proc.is_alive()

    # Commands -------------------------------------------------------------------------------
    def _send(self, msg: Command) -> bool:
        try:
            self._conn.send(msg)
            return True
        except (OSError, ValueError):
            return False

    def run(self, job: RunJob) -> None:
        self.move(WorkerState.BUSY)
        self.job_id = job.request_id
        self.cancel_sent = False
        self._send(job)

    def cancel(self) -> None:
        """Ask the running job to stop (idempotent; resent while the job stays CANCELLING)."""
        if self.job_id is not None and self._send(Cancel(self.job_id)):
            self.cancel_sent = True

    def finished(self) -> None:
        """The running job reported its outcome."""
        self.job_id = None
        self.cancel_sent = False
        if self.state is WorkerState.BUSY:
            self.move(WorkerState.READY)

    def kill(self) -> None:
        if self.proc.is_alive():
            log.warning("killing worker", extra={"worker": self.id, "pid": self.proc.pid, "request_id": self.job_id})
            self.proc.kill()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the process to exit, kill it after ``timeout``, and release the pipe (blocking)."""
        self._send(Shutdown())
        self.proc.join(timeout=timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=2)
        self._reader.join(timeout=2)
        self._conn.close()

    # Reader thread -------------------------------------------------------------------------
    def _read(self) -> None:
        while True:
            try:
                event = self._conn.recv()
            except (EOFError, OSError):
                break
            try:
                self._loop.call_soon_threadsafe(self._on_event, self, event)
            except RuntimeError:  # the loop closed (server shutting down)
                return
        self.proc.join(timeout=5)
        try:
            self._loop.call_soon_threadsafe(self._on_exit, self)
        except RuntimeError:
            return
