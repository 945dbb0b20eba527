"""The worker process: loads the engine once, then runs jobs one at a time through the pipeline.

Started by :class:`kinema.jobs.runner.WorkerProcess` (``spawn`` context) with one end of a duplex
pipe. It loads the engine on its device **before** it says :class:`WorkerReady`; a load failure is
reported as :class:`WorkerDefunct` with its reason, and the process exits. A reader thread takes
:class:`Cancel` messages while a job runs (the pipeline polls the cancel flag every frame); the
pipe closing (the server died) cancels the running job and ends the process.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from kinema.engines import Progress, load_engine
from kinema.errors import Cancelled, EngineError, KinemaError, RequestCancelled
from kinema.jobs.events import (
    Cancel,
    JobDone,
    JobLog,
    JobProgress,
    RunJob,
    Shutdown,
    WorkerDefunct,
    WorkerEvent,
    WorkerReady,
)
from kinema.media.storage import Storage, open_storage
from kinema.pipeline import Pipeline
from kinema.settings import Settings

__all__ = ["JobRunner", "worker_main"]

log = logging.getLogger("kinema.worker")

#: Progress of one stage is forwarded at most this often (each update is a store write).
PROGRESS_EVERY_S = 0.2
#: A stage's progress is also written to the job's log: its first and last step, and between them at
#: most every ``LOG_EVERY_S`` (every log line is a store write: on a 30 ms job, five more lines per stage
#: added 11 ms between the job's end and its outcome).
LOG_EVERY_S = 1.0


class JobRunner:
    """Runs jobs on a loaded pipeline, reporting every event through ``send``."""

    def __init__(self, pipeline: Pipeline, storage: Storage, work_dir: Path, send: _Send, *, engine_note: str = ""):
        self.pipeline = pipeline
        self.storage = storage
        self.work_dir = work_dir
        self._send = send
        self._engine_note = engine_note
        self.cancel = threading.Event()

    def run(self, job: RunJob) -> None:
        """Run one job to its :class:`JobDone`. Never raises."""
        rid = job.request_id
        t0 = time.monotonic()
        last_sent: dict[str, float] = {}

        def emit(message: str, level: str = "INFO") -> None:
            self._send(JobLog(rid, message, level, time.time()))

        last_logged: dict[str, float] = {}

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if p.step >= p.total or now - last_sent.get(p.stage, -1.0) >= PROGRESS_EVERY_S:
                last_sent[p.stage] = now
                self._send(JobProgress(rid, p))
            if p.step >= p.total or now - last_logged.get(p.stage, -LOG_EVERY_S) >= LOG_EVERY_S:
                last_logged[p.stage] = now
                emit(str(p))  # "step 7/30", "interpolate 40/150", "encode frame 40/150"

        work_path = self.work_dir / f"{rid}.mp4"
        if self._engine_note:
            emit(self._engine_note)
        try:
            stored = self.pipeline.run(
                job.payload,
                storage=self.storage,
                base_url=job.base_url,
                work_path=work_path,
                file_name=f"kinema-{rid[:8]}.mp4",
                progress=progress,
                should_cancel=self.cancel.is_set,
                log=emit,
                warn=lambda message: emit(message, "WARNING"),
            )
            elapsed = time.monotonic() - t0
            self._send(
                JobDone(
                    rid,
                    200,
                    {"video": stored.file},
                    None,
                    output=stored.file,
                    inference_time=elapsed,
                    billed_seconds=stored.clip.duration_s,
                )
            )
        except Cancelled:
            emit("cancelled", "WARN")
            self._done(rid, RequestCancelled())
        except KinemaError as exc:
            if isinstance(exc, EngineError):
                emit(f"engine error: {exc}", "ERROR")
                log.error("engine failed: %s", exc, extra={"request_id": rid})
            self._done(rid, exc)
        except Exception as exc:  # noqa: BLE001 - a bug outside the engine must not kill the worker
            log.error("job failed\n%s", traceback.format_exc(limit=8), extra={"request_id": rid})
            emit(f"internal error: {type(exc).__name__}: {exc}", "ERROR")
            self._done(rid, EngineError(f"The request failed: {type(exc).__name__}: {exc}"))
        finally:
            work_path.unlink(missing_ok=True)

    def _done(self, rid: str, exc: KinemaError) -> None:
        self._send(JobDone(rid, exc.status_code, exc.body(), exc.error_type))


class _Send:
    """``send(event)`` over the pipe from any thread (engines may log from their own threads)."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, event: WorkerEvent) -> None:
        with self._lock:
            self._conn.send(event)


def _read_commands(
    conn: Connection, jobs: queue.SimpleQueue[RunJob | None], runner: JobRunner, current: list[str | None]
) -> None:
    """Reader thread: jobs to the queue, cancels straight to the running job's flag."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            msg = Shutdown()  # the server is gone: stop what runs and exit
        if isinstance(msg, RunJob):
            jobs.put(msg)
        elif isinstance(msg, Cancel):
            if current[0] == msg.request_id:
                runner.cancel.set()
        elif isinstance(msg, Shutdown):
            runner.cancel.set()
            jobs.put(None)
            return


def worker_main(conn: Connection, settings: Settings, worker_id: str, device: str) -> None:
    """Process entry point: load the engine, say READY (or DEFUNCT), then serve jobs until told to stop."""
    from kinema.logs import (
        configure_logging,  # in the child only: the parent configured its own
    )

    configure_logging(settings.log_level)
    send = _Send(conn)
    t0 = time.monotonic()
    try:
        engine = load_engine(settings.engine, settings, device)
    except Exception as exc:  # noqa: BLE001 - any load failure makes this worker DEFUNCT, with the reason
        reason = str(exc) if isinstance(exc, KinemaError) else f"{type(exc).__name__}: {exc}"
        log.error("engine failed to load: %s", reason, extra={"worker": worker_id, "device": device})
        send(WorkerDefunct(os.getpid(), reason))
        conn.close()
        return
    load_s = time.monotonic() - t0
    storage = open_storage(settings)
    work_dir = settings.work_dir / worker_id
    work_dir.mkdir(parents=True, exist_ok=True)
    runner = JobRunner(
        Pipeline(settings, engine, local=storage.read_own),
        storage,
        work_dir,
        send,
        engine_note=f"load: engine ready on {device} (loaded once in {load_s:.2f} s)",
    )
    jobs: queue.SimpleQueue[RunJob | None] = queue.SimpleQueue()
    current: list[str | None] = [None]
    threading.Thread(
        target=_read_commands, args=(conn, jobs, runner, current), name="kinema-worker-commands", daemon=True
    ).start()
    send(WorkerReady(os.getpid(), load_s))
    try:
        while (job := jobs.get()) is not None:
            runner.cancel.clear()
            current[0] = job.request_id
            try:
                runner.run(job)
            except (OSError, EOFError):  # the pipe broke mid-job: the server is gone
                return
            finally:
                current[0] = None
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        conn.close()
