"""The dispatcher: feeds this process's workers from the store and reports back to it.

One per ``kinema serve`` (or ``kinema worker``) process. It keeps no job's truth: it claims the
next job from the :class:`~kinema.jobs.store.JobStore` when one of its workers is READY, renews
the leases of the jobs its workers run, forwards their logs, progress and outcome to the store,
and sends a :class:`~kinema.jobs.events.Cancel` when a job it runs turns CANCELLING (whichever
server took the cancel: it sees the change through the store's change feed). An engine that
ignores the cancel grace period is killed and its worker respawned (the reload cost is logged).
It also runs the store's housekeeping: lease expiry (re-queue once, then ``runner_disconnected``),
start deadlines and retention.

All store calls run on one thread of their own, in order, so a locked database never blocks the
event loop and a job's logs are written before its outcome.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from kinema.errors import KinemaError, RequestCancelled, RunnerDisconnected
from kinema.jobs.events import (
    JobDone,
    JobLog,
    JobProgress,
    RunJob,
    WorkerDefunct,
    WorkerEvent,
    WorkerReady,
)
from kinema.jobs.feed import ChangeFeed
from kinema.jobs.runner import WorkerProcess, sweep_dead_work_dirs
from kinema.jobs.states import JobState, WorkerState
from kinema.jobs.store import Job, JobStore, Outcome, error_outcome
from kinema.media.storage import ManagedStorage
from kinema.settings import Settings

__all__ = ["HOUSEKEEPING_S", "Dispatcher"]

log = logging.getLogger("kinema.dispatcher")
T = TypeVar("T")

#: Lease expiry and start deadlines are checked this often.
HOUSEKEEPING_S = 0.5
#: A completion the store could not take (database away) is retried this often.
COMPLETE_RETRY_S = 0.5


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        feed: ChangeFeed,
        storage: ManagedStorage | None = None,
        *,
        on_complete: Callable[[Job], None] | None = None,
    ):
        self.settings = settings
        self.store = store
        self.feed = feed
        self.storage = storage
        self._on_complete = on_complete
        self.workers: list[WorkerProcess] = []
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kinema-dispatcher-store")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._kill_timers: dict[str, asyncio.TimerHandle] = {}
        #: Worker index → monotonic time its replacement was spawned after a kill (reload cost).
        self._respawned: dict[int, float] = {}

    # Lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await asyncio.to_thread(sweep_dead_work_dirs, self.settings.work_dir)
        for i in range(max(0, self.settings.workers)):  # 0: an API-only server (standalone workers run jobs)
            self.workers.append(self._spawn(i))
        self._tasks = [
            asyncio.create_task(self._forever(self._claim_loop), name="kinema-dispatcher-claim"),
            asyncio.create_task(self._forever(self._watch_loop), name="kinema-dispatcher-watch"),
            asyncio.create_task(self._forever(self._housekeeping), name="kinema-dispatcher-housekeeping"),
        ]

    async def stop(self) -> None:
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # The loops also stop on ``_closing``: Python 3.11's ``wait_for`` can swallow a cancel that meets a
        # timeout (seen here as a teardown that hung 1 time in 6 under load), so cancelling alone is not enough.
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=10)
            if pending:
                log.warning("dispatcher tasks did not stop: %s", sorted(t.get_name() for t in pending))
        for timer in self._kill_timers.values():
            timer.cancel()
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
        await asyncio.to_thread(self._io.shutdown, True)  # queued writes finish, off the event loop

    def health(self) -> dict[str, Any]:
        """The ``/health`` body's worker part: whether this process can take work and, if not, why.

        ``status`` is ``ok`` while requests can be served (now, or once an engine finishes loading) and
        ``unavailable`` when every worker is DEFUNCT (answer 503 then); ``reason`` says why not.
        """
        states = [w.state for w in self.workers]
        can = any(s in (WorkerState.READY, WorkerState.BUSY) for s in states)
        dead = bool(states) and all(s is WorkerState.DEFUNCT for s in states)
        body: dict[str, Any] = {
            "status": "unavailable" if dead else "ok",
            "can_take_work": can,
            "workers": [
                {
                    "id": w.id,
                    "state": w.state.value,
                    "device": w.device,
                    "job": w.job_id,
                    "load_s": w.load_s,
                    **({"reason": w.reason} if w.reason else {}),
                }
                for w in self.workers
            ],
        }
        if not self.workers:
            body["reason"] = "API only (--workers 0): jobs run on standalone workers (kinema worker)"
        elif not can:
            reasons = sorted({w.reason for w in self.workers if w.reason})
            if dead:
                body["reason"] = "every worker is DEFUNCT: " + "; ".join(reasons or ["unknown"])
            else:
                body["reason"] = "the engine is loading"
        return body

    # Store calls, in order, off the event loop ------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._io, lambda: fn(*args, **kw))

    def _submit(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Fire-and-forget store write (ordered after earlier ones); failures are logged."""

        def run() -> None:
            try:
                fn(*args, **kw)
            except Exception:
                log.exception("store write failed")
            self.feed.notify()

        if not self._closing:
            self._io.submit(run)

    async def _complete(self, request_id: str, outcome: Outcome, worker_id: str | None) -> None:
        """Write the outcome; a store that cannot take it now (locked, full) is retried until the lease would
        lapse anyway (then the job is re-queued and the late write is refused by the store)."""
        deadline = time.monotonic() + 2 * self.settings.lease_s
        while True:
            try:
                job = await self._call(self.store.complete, request_id, outcome, worker_id=worker_id)
                break
            except KinemaError as exc:
                if self._closing or time.monotonic() > deadline:
                    log.error(
                        "completing a job failed; its lease will lapse: %s", exc, extra={"request_id": request_id}
                    )
                    return
                log.warning("completing a job failed; retrying: %s", exc, extra={"request_id": request_id})
                await asyncio.sleep(0.5)
        self.feed.notify()
        log.info(
            "job completed",
            extra={"request_id": request_id, "status": outcome.status_code, "error_type": outcome.error_type},
        )
        if self._on_complete is not None:
            try:
                self._on_complete(job)
            except Exception:
                log.exception("completion hook failed", extra={"request_id": request_id})

    # Workers --------------------------------------------------------------------------------
    def _spawn(self, index: int) -> WorkerProcess:
        assert self._loop is not None
        return WorkerProcess(index, self.settings, self._loop, self._on_event, self._on_exit)

    def _on_event(self, worker: WorkerProcess, event: WorkerEvent) -> None:
        if isinstance(event, WorkerReady):
            worker.load_s = event.load_s
            worker.move(WorkerState.READY)
            since = self._respawned.pop(worker.index, None)
            extra = {"worker": worker.id, "device": worker.device, "load_s": round(event.load_s, 3)}
            if since is not None:
                log.warning(
                    "worker respawned after a kill; engine reload cost %.2f s (%.2f s until ready)",
                    event.load_s,
                    time.monotonic() - since,
                    extra=extra,
                )
            else:
                log.info("worker ready", extra=extra)
            self._wake.set()
        elif isinstance(event, WorkerDefunct):
            worker.move(WorkerState.DEFUNCT, event.reason)
            log.error(
                "worker DEFUNCT: the engine failed to load: %s",
                event.reason,
                extra={"worker": worker.id, "device": worker.device},
            )
        elif isinstance(event, JobLog):
            self._submit(self.store.append_log, event.request_id, event.message, event.level, event.ts)
        elif isinstance(event, JobProgress):
            self._submit(self.store.set_progress, event.request_id, event.progress)
        elif isinstance(event, JobDone):
            if worker.job_id != event.request_id:
                return
            if self._closing:  # stopped by our shutdown: the lease lapses and the job runs again elsewhere
                worker.finished()
                return
            self._disarm(event.request_id)
            worker_id = worker.id
            worker.finished()
            self._track(self._complete(event.request_id, event.outcome(), worker_id))
            self._wake.set()

    def _on_exit(self, worker: WorkerProcess) -> None:
        if self._closing or worker not in self.workers:
            return
        rid = worker.job_id
        self._clean_work_dir(worker.id)
        if worker.state is WorkerState.DEFUNCT and rid is None:
            return  # a load failure: stays DEFUNCT (and says why in /health)
        code = worker.proc.exitcode
        if worker.state is not WorkerState.DEFUNCT:
            worker.move(WorkerState.DEFUNCT, f"the worker process exited (code {code})")
        if rid is not None:
            self._disarm(rid)
            if worker.cancel_sent:
                self._submit(
                    self.store.append_log,
                    rid,
                    "the engine ignored the cancel grace period; its worker was stopped",
                    "WARN",
                    time.time(),
                )
                self._track(self._complete(rid, error_outcome(RequestCancelled()), worker.id))
            else:
                log.warning(
                    "worker died while running a job", extra={"worker": worker.id, "exit_code": code, "request_id": rid}
                )
                self._submit(
                    self.store.append_log, rid, f"the runner process died (exit code {code})", "ERROR", time.time()
                )
                self._track(self._complete(rid, error_outcome(RunnerDisconnected()), worker.id))
        self._respawned[worker.index] = time.monotonic()
        self.workers[self.workers.index(worker)] = self._spawn(worker.index)

    def _disarm(self, request_id: str) -> None:
        timer = self._kill_timers.pop(request_id, None)
        if timer is not None:
            timer.cancel()

    def _send_cancel(self, worker: WorkerProcess) -> None:
        rid = worker.job_id
        if rid is None:
            return
        first = not worker.cancel_sent
        worker.cancel()
        if first and self._loop is not None:
            log.info("cancelling", extra={"request_id": rid, "worker": worker.id})
            self._kill_timers[rid] = self._loop.call_later(
                self.settings.cancel_grace_s, self._kill_if_still, worker, rid
            )

    def _kill_if_still(self, worker: WorkerProcess, request_id: str) -> None:
        self._kill_timers.pop(request_id, None)
        if worker.job_id == request_id and worker in self.workers:
            log.warning(
                "the engine ignored the cancel for %.1f s; killing its worker",
                self.settings.cancel_grace_s,
                extra={"request_id": request_id, "worker": worker.id},
            )
            worker.kill()

    def _track(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # Loops ----------------------------------------------------------------------------------
    async def _forever(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run one of the loops below; a bug in it is logged and the loop restarted, never left dead."""
        while not self._closing:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher loop %s failed; restarting it", loop.__name__)
                await asyncio.sleep(0.5)

    async def _claim_loop(self) -> None:
        """Claim a job for every READY worker; wake on a worker becoming READY or the store changing."""
        version = self.feed.version
        while not self._closing:
            self._wake.clear()  # before claiming: a wake during the claims below is not lost
            for worker in list(self.workers):
                while worker.ready and not self._closing:
                    try:
                        job = await self._call(self.store.claim, worker.id, self.settings.lease_s)
                    except KinemaError as exc:
                        log.warning("claim failed: %s", exc)
                        job = None
                    if job is None or not worker.ready:
                        if job is not None:  # the worker went away meanwhile: let the lease lapse back
                            log.warning("claimed for a worker that is gone", extra={"request_id": job.id})
                        break
                    self.feed.notify()
                    log.info("job started", extra={"request_id": job.id, "worker": worker.id, "attempt": job.attempts})
                    worker.run(RunJob(job.id, job.payload or {}, job.base_url))
                    break
            waiter = asyncio.ensure_future(self.feed.wait(version, timeout=1.0))
            woke = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({waiter, woke}, return_when=asyncio.FIRST_COMPLETED)
            for f in (waiter, woke):
                f.cancel()
            version = self.feed.version

    async def _watch_loop(self) -> None:
        """Renew leases every heartbeat; on any store change, look for CANCELLING jobs we run."""
        version = self.feed.version
        last_beat = 0.0
        while not self._closing:
            beat = time.monotonic() - last_beat >= self.settings.heartbeat_interval
            if beat:
                last_beat = time.monotonic()
            for worker in list(self.workers):
                rid = worker.job_id
                if rid is None or worker.state is not WorkerState.BUSY:
                    continue
                try:
                    if beat:
                        state = await self._call(self.store.heartbeat, rid, worker.id, self.settings.lease_s)
                    else:
                        job = await self._call(self.store.get, rid)
                        state = job.state if job is not None and job.worker_id == worker.id else None
                except KinemaError as exc:
                    log.warning("heartbeat failed: %s", exc, extra={"request_id": rid})
                    continue
                if worker.job_id != rid:
                    continue
                if state is JobState.CANCELLING or (state is None and beat):
                    if state is None:
                        log.warning("lease lost; stopping the job", extra={"request_id": rid, "worker": worker.id})
                    self._send_cancel(worker)
            timeout = max(0.05, self.settings.heartbeat_interval - (time.monotonic() - last_beat))
            version = await self.feed.wait(version, timeout=timeout)

    async def _housekeeping(self) -> None:
        last_purge = 0.0
        purge_every = max(0.5, min(60.0, self.settings.retention_s / 4))
        while not self._closing:
            now = time.time()
            try:
                expired = await self._call(self.store.expire_leases, now)
                expired += await self._call(self.store.expire_start_deadlines, now)
                if expired:
                    self.feed.notify()
                    self._wake.set()
                if now - last_purge > purge_every:
                    last_purge = now
                    purged = await self._call(self.store.purge, now - self.settings.retention_s)
                    if self.storage is not None:
                        await asyncio.to_thread(self._delete_files, purged)
            except KinemaError as exc:
                log.warning("housekeeping failed: %s", exc)
            await asyncio.sleep(HOUSEKEEPING_S)

    # Files ----------------------------------------------------------------------------------
    def _delete_files(self, jobs: list[Job]) -> None:
        assert self.storage is not None
        for job in jobs:
            url = job.outcome.output.get("url") if job.outcome is not None and job.outcome.output else None
            parsed = self.storage.parse_url_path(urllib.parse.urlsplit(url).path) if isinstance(url, str) else None
            if parsed is not None:
                self.storage.delete(parsed[0])
        self.storage.purge_older_than(self.settings.retention_s)

    def _clean_work_dir(self, worker_id: str) -> None:
        """A killed worker leaves its partial MP4 behind; remove its work folder."""
        shutil.rmtree(self.settings.work_dir / worker_id, ignore_errors=True)
