"""The job store: the one source of truth about every request (seam 2 of the jobs core).

The API edge (submit, status, result, SSE, cancel, ``/requests``, ``/usage``) and the dispatcher
(claim, heartbeat, log, progress, complete, lease expiry, purge) both talk to a :class:`JobStore`;
no process keeps a job's truth in memory. Every method is one transaction and synchronous; the
API calls them through a worker thread so a locked database never blocks its event loop.

Backends: :mod:`kinema.jobs.sqlite_store` (today). The contract every backend must meet is
``tests/test_store_contract.py``.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from kinema.engines import Progress
from kinema.errors import KinemaError, RequestCancelled, RequestTimeout, RunnerDisconnected, StoreFull, StoreUnavailable
from kinema.jobs.states import JobState, fal_status

__all__ = [
    "CANCELLED_ERROR_TYPE",
    "MAX_ATTEMPTS",
    "Job",
    "JobStore",
    "JobSummary",
    "LogEntry",
    "Outcome",
    "Progress",
    "StoreFull",
    "StoreUnavailable",
    "cancelled_outcome",
    "disconnected_outcome",
    "error_outcome",
    "start_timeout_outcome",
]

#: ``error_type`` of the outcome of a cancelled request (fal: 400 ``request_cancelled``).
CANCELLED_ERROR_TYPE = RequestCancelled.error_type
#: A job whose lease lapsed is re-queued once (attempt 1 → 2); after that it fails ``runner_disconnected``.
MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class Outcome:
    """How a request ended: what ``GET …/requests/{id}`` answers, forever."""

    status_code: int
    body: dict[str, Any]
    error_type: str | None = None
    #: The fal ``File`` of the video on success.
    output: dict[str, Any] | None = None
    inference_time: float | None = None
    billed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status_code == 200

    @property
    def cancelled(self) -> bool:
        return self.error_type == CANCELLED_ERROR_TYPE

    @property
    def state(self) -> JobState:
        """The terminal state this outcome puts a job in."""
        if self.ok:
            return JobState.SUCCEEDED
        return JobState.CANCELLED if self.cancelled else JobState.FAILED


def error_outcome(error: KinemaError, *, inference_time: float | None = None) -> Outcome:
    """The outcome of a request ended by ``error`` (its status code, fal body and ``error_type``)."""
    return Outcome(error.status_code, error.body(), error.error_type, inference_time=inference_time)


def cancelled_outcome() -> Outcome:
    return error_outcome(RequestCancelled())


def start_timeout_outcome() -> Outcome:
    return error_outcome(RequestTimeout())


def disconnected_outcome() -> Outcome:
    return error_outcome(RunnerDisconnected("The runner was interrupted while processing the request"))


@dataclass(frozen=True)
class LogEntry:
    index: int
    message: str
    level: str
    #: Seconds since the epoch.
    ts: float
    source: str = "USER"


@dataclass(frozen=True)
class Job:
    id: str
    key_id: str
    #: Submission order, assigned by the database.
    seq: int
    state: JobState
    #: Lower runs first (``kinema.jobs.status.Priority``: 0 normal, 1 low).
    priority: int
    base_url: str
    webhook_url: str | None
    created_at: float
    start_deadline: float | None
    attempts: int
    started_at: float | None = None
    completed_at: float | None = None
    worker_id: str | None = None
    lease_until: float | None = None
    progress: Progress | None = None
    outcome: Outcome | None = None
    #: The validated request input. Filled by ``claim`` and ``get(…, with_payload=True)`` only:
    #: status reads never load a request's (possibly many MiB of) input.
    payload: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def fal_status(self) -> str:
        return fal_status(self.state)


@dataclass(frozen=True)
class JobSummary:
    """One row of ``GET /requests``: never the input's bytes."""

    id: str
    seq: int
    state: JobState
    base_url: str
    created_at: float
    completed_at: float | None
    #: The input with ``data:`` URIs and other long strings left out (``None``).
    input: dict[str, Any]
    status_code: int | None
    error_type: str | None
    #: The outcome's body (the result on success, fal's error body otherwise).
    body: dict[str, Any] | None

    @property
    def fal_status(self) -> str:
        return fal_status(self.state)


class JobStore(Protocol):
    def submit(
        self,
        *,
        key_id: str,
        payload: dict[str, Any],
        priority: int,
        base_url: str,
        webhook_url: str | None,
        start_deadline: float | None,
    ) -> Job:
        """Insert a QUEUED job; its id and ``seq`` come from the store."""
        ...

    def claim(self, worker_id: str, lease_s: float) -> Job | None:
        """Atomically take the next QUEUED job (priority, then seq) under a lease; with its payload."""
        ...

    def heartbeat(self, request_id: str, worker_id: str, lease_s: float) -> JobState | None:
        """Extend the lease if ``worker_id`` still holds it; the current state, or None if the lease is lost."""
        ...

    def append_log(self, request_id: str, message: str, level: str, ts: float) -> None: ...

    def set_progress(self, request_id: str, progress: Progress) -> None: ...

    def complete(self, request_id: str, outcome: Outcome, *, worker_id: str | None) -> Job:
        """Make the job terminal (state from the outcome) and record usage in the same transaction.

        A job already terminal is returned unchanged (a terminal outcome never changes). With
        ``worker_id``, a job no longer held by that worker (lease lost and re-queued) is returned
        unchanged too.
        """
        ...

    def request_cancel(self, request_id: str) -> Job | None:
        """QUEUED → CANCELLED (400 ``request_cancelled``), RUNNING → CANCELLING, terminal unchanged."""
        ...

    def get(self, request_id: str, *, with_payload: bool = False) -> Job | None: ...

    def logs(self, request_id: str, start: int = 0) -> list[LogEntry]: ...

    def list(self, key_id: str, *, limit: int, before: str | None = None) -> list[JobSummary]:
        """The key's jobs, newest first; ``before`` is the id of the last row of the previous page."""
        ...

    def queue_position(self, request_id: str) -> int:
        """QUEUED jobs that run before this one (0 for a job that is not queued)."""
        ...

    def usage(self, key_id: str) -> dict[str, float]:
        """``{"requests": n, "billed_seconds": s, "cost_usd": c}`` over every completed request, purged ones too."""
        ...

    def expire_leases(self, now: float, *, max_attempts: int = MAX_ATTEMPTS) -> builtins.list[Job]:
        """RUNNING/CANCELLING jobs whose lease lapsed: re-queued, or failed ``runner_disconnected``
        (also CANCELLING ones become CANCELLED) once ``attempts`` reached ``max_attempts``."""
        ...

    def expire_start_deadlines(self, now: float) -> builtins.list[Job]:
        """QUEUED jobs past their start deadline become FAILED 504 ``request_timeout``."""
        ...

    def purge(self, older_than: float) -> builtins.list[Job]:
        """Delete terminal jobs completed before ``older_than`` (and their logs); usage is kept."""
        ...

    def running_on(self, worker_ids: Collection[str]) -> builtins.list[Job]: ...

    def change_counter(self) -> int:
        """Cheap; changes whenever any process changed the store."""
        ...

    def close(self) -> None: ...
