"""The body of one Ray engine actor: a warm engine that claims jobs from the store and runs them.

:class:`EngineActor` is a plain class; :mod:`kinema.ray.executor` turns it into a Ray actor
(``ray.remote(EngineActor).options(num_gpus=…, max_restarts=…)``). Its ``__init__`` loads the engine
once on the actor's device (Ray sets ``CUDA_VISIBLE_DEVICES`` for a GPU actor, so that is ``cuda:0``),
opens the deployment's job store and storage, and starts one claim thread:

    claim (priority, then age) → JobRunner.run (the core's pipeline, unchanged) → complete
        ├─ logs and progress → the store, in order, on one writer thread
        └─ a watcher: renews the lease every heartbeat; on any store change reads the job's state and
           sets the runner's cancel flag when it turned CANCELLING (the pipeline checks it every frame)

The store stays the truth: an actor holds nothing another process needs. If the actor dies (its
process killed, its node lost) Ray restarts it (``max_restarts``; ``__init__`` runs again: a new
worker id, the engine loaded again) and the dead actor's job is re-queued once its lease lapses
(the housekeeping of any ``kinema serve``), then run by whichever actor claims it. A ``complete``
from a worker that lost the lease is ignored by the store, so a job ends exactly once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from kinema.engines import load_engine
from kinema.errors import KinemaError, RequestCancelled, StoreUnavailable
from kinema.jobs.backends import open_job_store, open_storage
from kinema.jobs.events import JobDone, JobLog, JobProgress, RunJob, WorkerEvent
from kinema.jobs.runner import new_worker_id, sweep_dead_work_dirs
from kinema.jobs.states import JobState
from kinema.jobs.store import Job, Outcome, error_outcome
from kinema.jobs.worker import JobRunner
from kinema.pipeline import Pipeline
from kinema.settings import Settings

__all__ = ["POLL_S", "EngineActor", "actor_device"]

log = logging.getLogger("kinema.ray")

#: How often an actor looks at the store's change counter (one ``PRAGMA data_version`` on SQLite, one
#: sequence read on PostgreSQL): the delay between a submit (or a cancel) and the actor seeing it.
#: bench_ray.py, one actor, loaded 2-core machine, 10 jobs: median extra submit→COMPLETED overhead over a
#: local worker +63 ms at 0.05 s, +40 ms at 0.02 s (+13.7 ms over 90 jobs at 0.02 s).
POLL_S = 0.02
#: An idle actor tries to claim at least this often even when it saw no change.
IDLE_CLAIM_S = 1.0
#: A completion the store could not take (database away) is retried this often, until the lease lapses.
COMPLETE_RETRY_S = 0.5


def actor_device(settings: Settings, index: int, gpus: list[str]) -> str:
    """``cuda:0`` for an actor Ray gave a GPU (its only visible one), else the configured device."""
    return "cuda:0" if gpus else settings.device_for(index)


class EngineActor:
    """One warm engine claiming jobs from the store (see the module doc)."""

    def __init__(self, settings: Settings, index: int, gpus: list[str] | None = None):
        from kinema.logs import configure_logging  # the actor's own process: configure its logging here

        configure_logging(settings.log_level)
        self.settings = settings
        self.index = index
        self.worker_id = new_worker_id(index)  # host-pid-index-n: a restarted actor (new pid) has a new id
        self.device = actor_device(settings, index, gpus or [])
        t0 = time.monotonic()
        engine = load_engine(settings.engine, settings, self.device)  # once; a failure fails the actor's creation
        self.load_s = time.monotonic() - t0
        self.store = open_job_store(settings)
        self.storage = open_storage(settings)
        self.work_dir = settings.work_dir / self.worker_id
        sweep_dead_work_dirs(settings.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # JobRunner only ever calls send(event); its annotation names the worker process's pipe wrapper.
        self.runner = JobRunner(
            Pipeline(settings, engine, local=self.storage.read_own),
            self.storage,
            self.work_dir,
            self._on_event,  # type: ignore[arg-type]
            engine_note=f"load: engine ready on {self.device} in Ray actor {index}"
            f" (loaded once in {self.load_s:.2f} s)",
        )
        self._writes = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kinema-actor-store")
        self._stop = threading.Event()
        self.job_id: str | None = None
        self.jobs_run = 0
        self._thread = threading.Thread(target=self._serve, name="kinema-actor-claim", daemon=True)
        self._thread.start()
        log.info(
            "ray actor ready", extra={"worker": self.worker_id, "device": self.device, "load_s": round(self.load_s, 3)}
        )

    # Remote methods ---------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "worker": self.worker_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "device": self.device,
            "load_s": self.load_s,
            "job": self.job_id,
            "jobs_run": self.jobs_run,
            "alive": self._thread.is_alive(),
        }

    def stop(self) -> None:
        """Claim nothing more (a running job keeps its lease until the actor is killed)."""
        self._stop.set()

    # The claim loop ----------------------------------------------------------------------------
    def _serve(self) -> None:
        seen = -1
        last_try = 0.0
        while not self._stop.is_set():
            try:
                counter = self.store.change_counter()
                if counter == seen and time.monotonic() - last_try < IDLE_CLAIM_S:
                    self._stop.wait(POLL_S)
                    continue
                seen, last_try = counter, time.monotonic()
                job = self.store.claim(self.worker_id, self.settings.lease_s)
            except Exception as exc:  # noqa: BLE001 - the claim thread must outlive any store error
                log.warning("claim failed: %s", exc, extra={"worker": self.worker_id})
                self._stop.wait(IDLE_CLAIM_S)
                continue
            if job is not None:
                self._run(job)
                seen = -1  # look for the next job at once

    def _run(self, job: Job) -> None:
        self.job_id = job.id
        self.runner.cancel.clear()
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(job.id, done), name="kinema-actor-watch", daemon=True)
        log.info("job started", extra={"request_id": job.id, "worker": self.worker_id, "attempt": job.attempts})
        watcher.start()
        try:
            self.runner.run(RunJob(job.id, job.payload or {}, job.base_url))  # never raises; ends in JobDone
        finally:
            done.set()
            watcher.join()
            self.job_id = None
            self.jobs_run += 1

    def _watch(self, request_id: str, done: threading.Event) -> None:
        """Lease renewal and cancel delivery for the running job (its own thread, its own store reads)."""
        seen = -1
        last_beat = time.monotonic()
        cancel_at: float | None = None
        while not done.wait(POLL_S):
            now = time.monotonic()
            beat = now - last_beat >= self.settings.heartbeat_interval
            try:
                if beat:
                    last_beat = now
                    state = self.store.heartbeat(request_id, self.worker_id, self.settings.lease_s)
                else:
                    counter = self.store.change_counter()
                    if counter == seen:
                        state = JobState.RUNNING
                    else:
                        seen = counter
                        job = self.store.get(request_id)
                        state = job.state if job is not None and job.worker_id == self.worker_id else None
            except Exception as exc:  # noqa: BLE001 - keep watching; a lost lease shows at the next beat
                log.warning("heartbeat failed: %s", exc, extra={"request_id": request_id})
                continue
            if state is JobState.CANCELLING or (state is None and beat):
                if cancel_at is None:
                    cancel_at = now
                    log.info(
                        "cancelling" if state else "lease lost; stopping the job",
                        extra={"request_id": request_id, "worker": self.worker_id},
                    )
                self.runner.cancel.set()
            if cancel_at is not None and now - cancel_at > self.settings.cancel_grace_s:
                self._abandon(request_id)

    def _abandon(self, request_id: str) -> None:
        """The engine ignored the cancel for the grace period: end the job, then this process (Ray restarts it)."""
        log.warning(
            "the engine ignored the cancel for %.1f s; restarting the actor",
            self.settings.cancel_grace_s,
            extra={"request_id": request_id, "worker": self.worker_id},
        )
        try:
            self.store.append_log(
                request_id,
                "the engine ignored the cancel grace period; its Ray actor was restarted",
                "WARN",
                time.time(),
            )
            self.store.complete(request_id, error_outcome(RequestCancelled()), worker_id=self.worker_id)
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            os._exit(1)

    # Events from the runner, written to the store in order -------------------------------------
    def _on_event(self, event: WorkerEvent) -> None:
        if isinstance(event, JobLog):
            self._write(self.store.append_log, event.request_id, event.message, event.level, event.ts)
        elif isinstance(event, JobProgress):
            self._write(self.store.set_progress, event.request_id, event.progress)
        elif isinstance(event, JobDone):
            # Waited for: the next claim comes after this job's outcome is in the store.
            self._writes.submit(self._complete, event.request_id, event.outcome()).result()

    def _write(self, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - a lost log line must not stop the job
                log.warning("store write failed: %s", exc)

        self._writes.submit(run)

    def _complete(self, request_id: str, outcome: Outcome) -> None:
        give_up = time.monotonic() + self.settings.lease_s
        while True:
            try:
                self.store.complete(request_id, outcome, worker_id=self.worker_id)
                log.info(
                    "job completed",
                    extra={"request_id": request_id, "status": outcome.status_code, "worker": self.worker_id},
                )
                return
            except StoreUnavailable as exc:
                if time.monotonic() > give_up:
                    log.error("completing a job failed: %s", exc, extra={"request_id": request_id})
                    return
                time.sleep(COMPLETE_RETRY_S)
            except KinemaError as exc:
                log.error("completing a job failed: %s", exc, extra={"request_id": request_id})
                return
