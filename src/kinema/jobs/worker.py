"""The worker process: runs one job at a time through the engine, isolated from the server.

The server starts it with :func:`worker_main` (``spawn`` context) and a duplex pipe. It answers
each :class:`~kinema.jobs.events.RunJob` with a stream of events ending in ``JobSucceeded`` or
``JobFailed``. Cancellation arrives through a shared flag that the engine polls every frame.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from kinema.engines import Progress, load_engine
from kinema.errors import Cancelled, InputError, KinemaError
from kinema.jobs.events import JobFailed, JobLog, JobProgress, JobStarted, JobSucceeded, RunJob, WorkerReady
from kinema.settings import Settings

__all__ = ["worker_main", "run_job"]

log = logging.getLogger("kinema.worker")
_parent_pid = os.getppid()

#: Progress is logged at these fractions of the frames (engines call back every frame).
_LOG_EVERY = 0.1


def _own_file_reader(settings: Settings, own_bases: tuple[str, ...]):
    from kinema.media.storage import FileStorage

    storage = FileStorage(settings.files_dir)

    def local(url: str) -> bytes | None:
        for base in own_bases:
            prefix = base.rstrip("/") + "/files/"
            if url.startswith(prefix):
                parsed = storage.parse_url_path("/files/" + url[len(prefix):].split("?", 1)[0])
                if parsed is None:
                    return None
                stored = storage.get(*parsed)
                return None if stored is None else stored.path.read_bytes()
        return None

    return local


def run_job(job: RunJob, settings: Settings, send: Any, cancel_flag: Any) -> None:
    """Run one job, reporting through ``send(event)``. Never raises."""
    from kinema.media.fetch import Fetcher
    from kinema.media.inputs import load_inputs
    from kinema.schema import parse_input

    rid = job.request_id
    t0 = time.monotonic()
    send(JobStarted(rid))

    def emit(message: str, level: str = "INFO") -> None:
        send(JobLog(rid, message, level, time.time()))

    try:
        # 1. Validate the request and fetch its inputs (422s that need the files come from here).
        req = parse_input(job.payload)
        fetcher = Fetcher(settings, local=_own_file_reader(settings, job.own_bases))
        emit("fetching inputs")
        inputs = load_inputs(req, fetcher.fetch, max_pixels=settings.max_image_pixels)
        h, w = inputs.image.shape[:2]
        emit(f"input image {w}x{h}; rendering {inputs.num_frames} frames")

        # 2. Run the engine with a progress callback and the shared cancel flag.
        engine = load_engine(settings.engine)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        output = settings.work_dir / f"{rid}.mp4"
        next_log = [0.0]

        def callback(p: Progress) -> None:
            send(JobProgress(rid, p.step, p.total))
            frac = p.step / max(p.total, 1)
            if frac >= next_log[0] or p.step == p.total:
                emit(f"rendered {p.step}/{p.total} frames ({frac:.0%})")
                next_log[0] = frac + _LOG_EVERY

        def should_cancel() -> bool:
            # A cancel request, or the server died (orphaned workers stop instead of rendering on).
            return bool(cancel_flag.value) or os.getppid() != _parent_pid

        info = engine(inputs, output, callback=callback, should_cancel=should_cancel, log=emit)
        elapsed = time.monotonic() - t0
        emit(f"done: {info.frames} frames {info.width}x{info.height} in {elapsed:.2f} s")
        send(JobSucceeded(rid, str(output), info.width, info.height, info.frames, info.fps, elapsed))
    except Cancelled:
        send(JobFailed(rid, 400, {"detail": "Request was cancelled", "error_type": "request_cancelled"},
                       "request_cancelled", cancelled=True))
    except InputError as exc:
        send(JobFailed(rid, exc.status_code, exc.body(), exc.error_type))
    except KinemaError as exc:
        send(JobFailed(rid, exc.status_code, exc.body(), exc.error_type))
    except Exception as exc:  # noqa: BLE001 - the engine's bug must not kill the worker
        tb = traceback.format_exc(limit=8)
        emit(f"engine error: {type(exc).__name__}: {exc}", "ERROR")
        log.error("engine failed\n%s", tb, extra={"request_id": rid})
        send(JobFailed(rid, 500, {"detail": f"The engine failed: {type(exc).__name__}: {exc}",
                                   "error_type": "engine_error"}, "engine_error"))


def worker_main(conn: Connection, settings: Settings, cancel_flag: Synchronized) -> None:  # type: ignore[type-arg]
    """Process entry point: serve RunJob messages until the pipe closes."""
    from kinema.logs import configure_logging

    configure_logging(settings.log_level)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    global _parent_pid
    _parent_pid = os.getppid()
    conn.send(WorkerReady(os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if msg is None:
            return
        if isinstance(msg, RunJob):  # the server clears the cancel flag before sending
            run_job(msg, settings, conn.send, cancel_flag)
