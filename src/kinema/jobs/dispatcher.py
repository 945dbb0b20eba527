"""The dispatcher: owns live jobs, the queue and the worker pool, inside the server's event loop.

Every state change is written to the :class:`~kinema.jobs.store.JobStore` before it is visible,
so that a restart recovers: queued jobs run, a job interrupted while running is run again once,
and one interrupted twice completes with ``runner_disconnected``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from kinema.errors import RunnerDisconnected
from kinema.jobs.events import JobFailed, JobLog, JobProgress, JobStarted, JobSucceeded, RunJob, WorkerEvent, WorkerReady
from kinema.jobs.runner import WorkerHandle
from kinema.jobs.status import Priority, Status
from kinema.jobs.store import Job, JobStore, LogEntry
from kinema.settings import Settings

__all__ = ["Dispatcher", "MAX_ATTEMPTS"]

log = logging.getLogger("kinema.dispatcher")

#: A job interrupted by a crash of the whole server is run again once.
MAX_ATTEMPTS = 2


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat().replace("+00:00", "Z")


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        *,
        adopt_output: Callable[[Job, Path], dict[str, Any]],
        on_complete: Callable[[Job], None] | None = None,
        purge_files: Callable[[Job], None] | None = None,
    ):
        self.settings = settings
        self.store = store
        self._adopt_output = adopt_output
        self._on_complete = on_complete
        self._purge_files = purge_files
        self.jobs: dict[str, Job] = {}
        self._queue: list[Job] = []
        self._workers: list[WorkerHandle] = []
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # Lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._seq = self.store.max_seq()
        self._recover()
        for i in range(max(1, self.settings.workers)):
            self._workers.append(self._spawn(i))
        self._tasks.append(asyncio.create_task(self._housekeeping()))

    async def stop(self) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for w in self._workers:
            await asyncio.to_thread(w.stop)

    def _spawn(self, index: int) -> WorkerHandle:
        assert self._loop is not None
        return WorkerHandle(index, self.settings, self._loop, self._on_event, self._on_exit)

    def _recover(self) -> None:
        now = time.time()
        for job in self.store.load_all():
            if job.status is Status.COMPLETED:
                if job.completed_at is not None and job.completed_at < now - self.settings.retention_s:
                    self._purge(job)
                    continue
                self.jobs[job.id] = job
                continue
            self.jobs[job.id] = job
            if job.status is Status.IN_PROGRESS:
                if job.attempts >= MAX_ATTEMPTS:
                    self._log(job, "the runner was interrupted again; giving up", "ERROR")
                    self._fail(job, RunnerDisconnected("The runner was interrupted while processing the request"))
                    continue
                self._log(job, "the server restarted while this request ran; running it again", "WARN")
                job.status = Status.IN_QUEUE
                job.started_at = None
                self.store.save(job)
            self._enqueue(job)
        log.info("recovered jobs", extra={"jobs": len(self.jobs), "queued": len(self._queue)})

    # Submitting and reading ----------------------------------------------------
    def submit(
        self,
        key_id: str,
        payload: dict[str, Any],
        base_url: str,
        *,
        priority: Priority = Priority.NORMAL,
        webhook_url: str | None = None,
        start_timeout_s: float | None = None,
    ) -> Job:
        self._seq += 1
        now = time.time()
        job = Job(
            id=str(uuid.uuid4()),
            key_id=key_id,
            input=payload,
            base_url=base_url,
            seq=self._seq,
            priority=priority,
            webhook_url=webhook_url,
            created_at=now,
            start_deadline=None if start_timeout_s is None else now + start_timeout_s,
        )
        self.store.insert(job)
        self.jobs[job.id] = job
        self._enqueue(job)
        return job

    def get(self, request_id: str, key_id: str) -> Job | None:
        job = self.jobs.get(request_id)
        return job if job is not None and job.key_id == key_id else None

    def list(self, key_id: str, limit: int = 50) -> list[Job]:
        mine = [j for j in self.jobs.values() if j.key_id == key_id]
        mine.sort(key=lambda j: j.seq, reverse=True)
        return mine[:limit]

    def queue_position(self, job: Job) -> int:
        """Requests ahead of ``job`` (``low`` priority runs after ``normal``)."""
        key = (int(job.priority), job.seq)
        return sum(1 for j in self._queue if (int(j.priority), j.seq) < key)

    def cancel(self, job: Job) -> bool:
        """Ask to cancel; False if the job already completed."""
        if job.status is Status.COMPLETED:
            return False
        if job.status is Status.IN_QUEUE:
            self._queue.remove(job)
            self._log(job, "cancelled while queued", "WARN")
            self._cancelled(job)
            return True
        if not job.cancel_requested:
            job.cancel_requested = True
            self._log(job, "cancellation requested", "WARN")
            worker = self._worker_for(job)
            if worker is not None:
                worker.cancel()
                assert self._loop is not None
                self._loop.call_later(self.settings.cancel_grace_s, self._kill_if_still_running, worker, job.id)
        return True

    async def wait(self, job: Job, timeout: float | None = None) -> bool:
        """Wait until ``job`` changes (any log, progress or state); False on timeout."""
        if job.status is Status.COMPLETED:
            return True
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.setdefault(job.id, []).append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(job.id)
            if waiters and fut in waiters:
                waiters.remove(fut)

    async def wait_completed(self, job: Job) -> None:
        while job.status is not Status.COMPLETED:
            await self.wait(job, timeout=1.0)

    # Internals --------------------------------------------------------------------
    def _notify(self, job: Job) -> None:
        for fut in self._waiters.pop(job.id, []):
            if not fut.done():
                fut.set_result(None)

    def _log(self, job: Job, message: str, level: str = "INFO", ts: float | None = None) -> None:
        entry = LogEntry(message, level, "USER", _iso(ts or time.time()))
        job.logs.append(entry)
        self.store.append_log(job.id, len(job.logs) - 1, entry)
        self._notify(job)

    def _enqueue(self, job: Job) -> None:
        self._queue.append(job)
        self._queue.sort(key=lambda j: (int(j.priority), j.seq))
        self._pump()

    def _pump(self) -> None:
        if self._closing:
            return
        now = time.time()
        for worker in self._workers:
            while worker.idle and self._queue:
                job = self._queue.pop(0)
                if job.start_deadline is not None and now > job.start_deadline:
                    self._timed_out(job)
                    continue
                job.status = Status.IN_PROGRESS
                job.started_at = now
                job.attempts += 1
                self.store.save(job)
                log.info("job started", extra={"request_id": job.id, "worker": worker.index, "attempt": job.attempts})
                worker.run(RunJob(job.id, job.input, self._own_bases(job)))
                self._notify(job)
        for job in list(self._queue):  # the rest still waiting: positions moved
            self._notify(job)

    def _own_bases(self, job: Job) -> tuple[str, ...]:
        bases = {job.base_url.rstrip("/")}
        if self.settings.public_url:
            bases.add(self.settings.public_url.rstrip("/"))
        return tuple(sorted(bases))

    def _worker_for(self, job: Job) -> WorkerHandle | None:
        return next((w for w in self._workers if w.job_id == job.id), None)

    def _kill_if_still_running(self, worker: WorkerHandle, request_id: str) -> None:
        if worker.job_id == request_id:
            worker.kill()

    def _on_event(self, worker: WorkerHandle, event: WorkerEvent) -> None:
        if isinstance(event, WorkerReady):
            worker.ready = True
            self._pump()
            return
        job = self.jobs.get(event.request_id)
        if job is None or job.status is Status.COMPLETED:
            if isinstance(event, (JobSucceeded, JobFailed)):
                worker.job_id = None
                self._pump()
            return
        if isinstance(event, JobStarted):
            return
        if isinstance(event, JobLog):
            self._log(job, event.message, event.level, event.timestamp)
        elif isinstance(event, JobProgress):
            job.progress = (event.step, event.total)
            self._notify(job)
        elif isinstance(event, JobSucceeded):
            worker.job_id = None
            try:
                body = self._adopt_output(job, Path(event.output_path))
            except Exception as exc:  # noqa: BLE001 - storage failure is reported, not raised
                log.exception("storing output failed", extra={"request_id": job.id})
                self._complete(job, 500, {"detail": f"storing the output failed: {exc}", "error_type": "storage_error"},
                               "storage_error")
            else:
                job.inference_time = event.inference_time
                job.billed_seconds = event.frames / event.fps
                job.cost = round(job.billed_seconds * self.settings.price_per_second, 6)
                self.store.record_usage(job)
                self._complete(job, 200, body, None)
            self._pump()
        elif isinstance(event, JobFailed):
            worker.job_id = None
            if event.cancelled or job.cancel_requested:
                self._cancelled(job)
            else:
                self._complete(job, event.status_code, event.body, event.error_type)
            self._pump()

    def _on_exit(self, worker: WorkerHandle) -> None:
        if self._closing:
            return
        job = self.jobs.get(worker.job_id) if worker.job_id else None
        log.warning("worker exited", extra={"worker": worker.index, "exit_code": worker.proc.exitcode,
                                            "request_id": worker.job_id})
        if job is not None and job.status is not Status.COMPLETED:
            if job.cancel_requested:
                self._log(job, "the runner was stopped after the cancel grace period", "WARN")
                self._cancelled(job)
            else:
                self._log(job, f"the runner process died (exit code {worker.proc.exitcode})", "ERROR")
                self._fail(job, RunnerDisconnected("The runner disconnected while processing the request"))
        self._workers[self._workers.index(worker)] = self._spawn(worker.index)

    def _cancelled(self, job: Job) -> None:
        self._complete(job, 400, {"detail": "Request was cancelled", "error_type": "request_cancelled"},
                       "request_cancelled")

    def _timed_out(self, job: Job) -> None:
        self._log(job, "the request timed out before processing started", "ERROR")
        self._complete(job, 504, {"detail": "Request timed out before processing started",
                                  "error_type": "request_timeout"}, "request_timeout")

    def _fail(self, job: Job, exc: RunnerDisconnected) -> None:
        self._complete(job, exc.status_code, exc.body(), exc.error_type)

    def _complete(self, job: Job, status_code: int, body: Any, error_type: str | None) -> None:
        job.status = Status.COMPLETED
        job.completed_at = time.time()
        job.result_status = status_code
        job.result_body = body
        job.error_type = error_type
        if job.inference_time is None and job.started_at is not None:
            job.inference_time = job.completed_at - job.started_at
        self.store.save(job)
        log.info("job completed", extra={"request_id": job.id, "status": status_code, "error_type": error_type})
        self._notify(job)
        if self._on_complete is not None:
            try:
                self._on_complete(job)
            except Exception:  # noqa: BLE001
                log.exception("completion hook failed", extra={"request_id": job.id})

    def _purge(self, job: Job) -> None:
        if self._purge_files is not None:
            self._purge_files(job)
        self.store.delete(job.id)
        self.jobs.pop(job.id, None)

    async def _housekeeping(self) -> None:
        """Start-timeouts of queued jobs (every 0.2 s) and retention (every minute, or sooner for short ones)."""
        last_purge = 0.0
        purge_every = max(0.5, min(60.0, self.settings.retention_s / 4))
        while True:
            await asyncio.sleep(0.2)
            now = time.time()
            for job in [j for j in self._queue if j.start_deadline is not None and now > j.start_deadline]:
                self._queue.remove(job)
                self._timed_out(job)
            if now - last_purge > purge_every:
                last_purge = now
                cutoff = now - self.settings.retention_s
                for job in [j for j in self.jobs.values() if j.completed_at is not None and j.completed_at < cutoff]:
                    self._purge(job)
