"""Rows of the SQLite job store ↔ the store's dataclasses, and SQLite errors ↔ store errors."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from kinema.jobs.states import JobState
from kinema.jobs.store import Job, Outcome, Progress, StoreFull, StoreUnavailable

__all__ = ["ACTIVE", "COLS", "row_job", "translate", "webhook_error"]

COLS = (
    "id, key_id, seq, state, priority, base_url, webhook_url, created_at, start_deadline, attempts,"
    " started_at, completed_at, worker_id, lease_until, progress_stage, progress_step, progress_total,"
    " status_code, result_body, error_type, output, inference_time, billed_seconds"
)
ACTIVE = (JobState.RUNNING.value, JobState.CANCELLING.value)

# SQLite primary result codes (sqlite3.h).
_SQLITE_FULL = 13


def translate(exc: sqlite3.Error) -> Exception:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == _SQLITE_FULL or "full" in str(exc).lower():
        return StoreFull("The disk holding the job store is full")
    return StoreUnavailable(f"The job store is unavailable: {exc}")


def row_job(r: tuple[Any, ...], payload: str | None = None) -> Job:
    (
        rid,
        key_id,
        seq,
        state,
        priority,
        base_url,
        webhook_url,
        created_at,
        start_deadline,
        attempts,
        started_at,
        completed_at,
        worker_id,
        lease_until,
        p_stage,
        p_step,
        p_total,
        status_code,
        result_body,
        error_type,
        output,
        inference_time,
        billed,
    ) = r
    outcome = None
    if status_code is not None:
        outcome = Outcome(
            int(status_code),
            json.loads(result_body) if result_body else {},
            error_type,
            json.loads(output) if output else None,
            inference_time,
            float(billed),
        )
    progress = None if p_step is None else Progress(step=int(p_step), total=int(p_total), stage=str(p_stage))
    return Job(
        id=rid,
        key_id=key_id,
        seq=int(seq),
        state=JobState(state),
        priority=int(priority),
        base_url=base_url,
        webhook_url=webhook_url,
        created_at=float(created_at),
        start_deadline=start_deadline,
        attempts=int(attempts),
        started_at=started_at,
        completed_at=completed_at,
        worker_id=worker_id,
        lease_until=lease_until,
        progress=progress,
        outcome=outcome,
        payload=None if payload is None else json.loads(payload),
    )


def webhook_error(outcome: Outcome) -> str | None:
    if outcome.ok:
        return None
    detail = outcome.body.get("detail")
    return detail if isinstance(detail, str) and detail else json.dumps(detail)
