"""Typed messages crossing the dispatcher ↔ worker process boundary (a ``multiprocessing`` pipe).

dispatcher → worker:  RunJob, Cancel, Shutdown
worker → dispatcher:  WorkerReady | WorkerDefunct (once, after loading the engine),
                      JobLog*, JobProgress*, then JobDone (the job's outcome, cancellation included)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kinema.engines import Progress
from kinema.jobs.store import Outcome

__all__ = [
    "Cancel",
    "Command",
    "JobDone",
    "JobLog",
    "JobProgress",
    "RunJob",
    "Shutdown",
    "WorkerDefunct",
    "WorkerEvent",
    "WorkerReady",
]


# Dispatcher → worker ---------------------------------------------------------------------
@dataclass(frozen=True)
class RunJob:
    request_id: str
    payload: dict[str, Any]
    #: Base URL the request was submitted through (the output's URL uses it).
    base_url: str


@dataclass(frozen=True)
class Cancel:
    """Stop the running job ``request_id`` at its next cancel check."""

    request_id: str


@dataclass(frozen=True)
class Shutdown:
    """Finish nothing more; exit."""


Command = RunJob | Cancel | Shutdown


# Worker → dispatcher ---------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerReady:
    """The engine is loaded; the worker takes jobs."""

    pid: int
    load_s: float


@dataclass(frozen=True)
class WorkerDefunct:
    """The engine could not be loaded; the worker exits and takes no work."""

    pid: int
    reason: str


@dataclass(frozen=True)
class JobLog:
    request_id: str
    message: str
    level: str = "INFO"
    ts: float = 0.0


@dataclass(frozen=True)
class JobProgress:
    request_id: str
    progress: Progress


@dataclass(frozen=True)
class JobDone:
    """The job's outcome as fal shows it (``status_code`` 200 with the video's ``File``, or an error)."""

    request_id: str
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    output: dict[str, Any] | None = None
    inference_time: float | None = None
    billed_seconds: float = 0.0

    def outcome(self) -> Outcome:
        """The outcome to write to the store."""
        return Outcome(
            self.status_code,
            self.body,
            self.error_type,
            output=self.output,
            inference_time=self.inference_time,
            billed_seconds=self.billed_seconds,
        )


WorkerEvent = WorkerReady | WorkerDefunct | JobLog | JobProgress | JobDone
