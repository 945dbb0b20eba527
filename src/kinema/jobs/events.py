"""Typed messages crossing the server ↔ worker process boundary (sent over a ``multiprocessing`` pipe).

    server → worker:  RunJob
    worker → server:  WorkerReady, JobStarted, JobLog, JobProgress, JobSucceeded, JobFailed
Cancellation is not a message: the server sets the worker's shared cancel flag, which the
engine's ``should_cancel`` reads, so a busy worker sees it without reading its pipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "RunJob",
    "WorkerReady",
    "JobStarted",
    "JobLog",
    "JobProgress",
    "JobSucceeded",
    "JobFailed",
    "WorkerEvent",
]


@dataclass(frozen=True)
class RunJob:
    request_id: str
    payload: dict[str, Any]
    #: Base URLs under which ``/files/...`` URLs are this server's own (read from storage).
    own_bases: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerReady:
    pid: int


@dataclass(frozen=True)
class JobStarted:
    request_id: str


@dataclass(frozen=True)
class JobLog:
    request_id: str
    message: str
    level: str = "INFO"
    timestamp: float = 0.0


@dataclass(frozen=True)
class JobProgress:
    request_id: str
    step: int
    total: int


@dataclass(frozen=True)
class JobSucceeded:
    request_id: str
    output_path: str
    width: int
    height: int
    frames: int
    fps: int
    inference_time: float


@dataclass(frozen=True)
class JobFailed:
    request_id: str
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    error_type: str = "internal_error"
    cancelled: bool = False


WorkerEvent = Union[WorkerReady, JobStarted, JobLog, JobProgress, JobSucceeded, JobFailed]
