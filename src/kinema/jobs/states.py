"""The internal state machines of the jobs core: jobs, workers and webhook deliveries.

Every move goes through one transition table; an illegal move is a programming error
(:class:`IllegalTransition`, a ``ValueError``), never a user-facing one. fal's three public states
(``IN_QUEUE``/``IN_PROGRESS``/``COMPLETED``) are computed from :class:`JobState` at the API edge only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = [
    "TERMINAL",
    "DeliveryState",
    "IllegalTransition",
    "JobState",
    "WorkerState",
    "check_delivery_transition",
    "check_transition",
    "check_worker_transition",
    "fal_status",
]


class IllegalTransition(ValueError):
    """A state machine was asked for a move its table does not allow (a bug, not a user error)."""


class JobState(str, enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

_JOB_MOVES: Mapping[JobState, frozenset[JobState]] = {
    # claim; cancel while queued; start deadline passed / runner_disconnected
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    # cancel requested; lease lapsed (re-queued once); outcome
    JobState.RUNNING: frozenset({JobState.CANCELLING, JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED}),
    # the worker stopped (CANCELLED) or finished first (SUCCEEDED/FAILED)
    JobState.CANCELLING: frozenset({JobState.CANCELLED, JobState.SUCCEEDED, JobState.FAILED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def check_transition(old: JobState, new: JobState) -> None:
    """Raise :class:`IllegalTransition` unless ``old → new`` is a legal job move."""
    if new not in _JOB_MOVES[old]:
        raise IllegalTransition(f"job: {old.value} -> {new.value} is not allowed")


def fal_status(state: JobState) -> str:
    """fal's public status for an internal state: ``IN_QUEUE``, ``IN_PROGRESS`` or ``COMPLETED``."""
    if state is JobState.QUEUED:
        return "IN_QUEUE"
    if state in (JobState.RUNNING, JobState.CANCELLING):
        return "IN_PROGRESS"
    return "COMPLETED"


class WorkerState(str, enum.Enum):
    STARTING = "STARTING"  # process spawned, engine loading
    READY = "READY"  # engine loaded, idle
    BUSY = "BUSY"  # running one job
    DEFUNCT = "DEFUNCT"  # engine failed to load or the process is gone; takes no work


_WORKER_MOVES: Mapping[WorkerState, frozenset[WorkerState]] = {
    WorkerState.STARTING: frozenset({WorkerState.READY, WorkerState.DEFUNCT}),
    WorkerState.READY: frozenset({WorkerState.BUSY, WorkerState.DEFUNCT}),
    WorkerState.BUSY: frozenset({WorkerState.READY, WorkerState.DEFUNCT}),
    WorkerState.DEFUNCT: frozenset(),
}


def check_worker_transition(old: WorkerState, new: WorkerState) -> None:
    if new not in _WORKER_MOVES[old]:
        raise IllegalTransition(f"worker: {old.value} -> {new.value} is not allowed")


class DeliveryState(str, enum.Enum):
    PENDING = "pending"  # waiting for its (next) attempt
    DELIVERING = "delivering"  # an attempt is in flight
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # attempts exhausted


_DELIVERY_MOVES: Mapping[DeliveryState, frozenset[DeliveryState]] = {
    DeliveryState.PENDING: frozenset({DeliveryState.DELIVERING, DeliveryState.FAILED}),
    # success; retry later; attempts exhausted. (DELIVERING → PENDING also recovers an attempt
    # interrupted by a crash of the delivering process.)
    DeliveryState.DELIVERING: frozenset({DeliveryState.DELIVERED, DeliveryState.PENDING, DeliveryState.FAILED}),
    DeliveryState.DELIVERED: frozenset(),
    DeliveryState.FAILED: frozenset(),
}


def check_delivery_transition(old: DeliveryState, new: DeliveryState) -> None:
    if new not in _DELIVERY_MOVES[old]:
        raise IllegalTransition(f"delivery: {old.value} -> {new.value} is not allowed")
