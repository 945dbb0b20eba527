"""fal's JSON bodies for a request, built from what the store holds (the wire format lives here)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kinema import ENDPOINT_ID
from kinema.jobs.states import JobState
from kinema.jobs.store import Job, JobSummary, LogEntry

__all__ = ["OWNER_ALIAS", "error_text", "log_json", "status_body", "summary_body", "urls"]

OWNER_ALIAS = "/".join(ENDPOINT_ID.split("/")[:2])  # fal-ai/kling-video


def urls(request_id: str, base_url: str) -> dict[str, str]:
    root = f"{base_url}/{OWNER_ALIAS}/requests/{request_id}"
    return {"response_url": root, "status_url": root + "/status", "cancel_url": root + "/cancel"}


def error_text(body: dict[str, Any]) -> str:
    """The ``error`` string of a failed request: its ``detail`` (a 422's list as JSON text)."""
    detail = body.get("detail")
    return detail if isinstance(detail, str) else json.dumps(detail)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def log_json(entry: LogEntry) -> dict[str, str]:
    return {"message": entry.message, "level": entry.level, "source": entry.source, "timestamp": _iso(entry.ts)}


def status_body(job: Job, logs: list[LogEntry] | None, queue_position: int) -> dict[str, Any]:
    """``GET …/status``: ``logs`` is None unless ``?logs=1``."""
    body: dict[str, Any] = {"status": job.fal_status, "request_id": job.id, **urls(job.id, job.base_url)}
    if job.state is JobState.QUEUED:
        body["queue_position"] = queue_position
    body["logs"] = None if logs is None else [log_json(e) for e in logs]
    if job.state in (JobState.RUNNING, JobState.CANCELLING) and job.progress is not None:
        p = job.progress  # kinema extension
        body["progress"] = {"step": p.step, "total": p.total, "stage": p.stage}
    if job.outcome is not None:
        body["metrics"] = {"inference_time": job.outcome.inference_time}
        if not job.outcome.ok:
            body["error"] = error_text(job.outcome.body)
            body["error_type"] = job.outcome.error_type
    return body


def summary_body(s: JobSummary) -> dict[str, Any]:
    """One entry of ``GET /requests``: no input bytes (data URIs are ``null``), no logs."""
    body: dict[str, Any] = {
        "status": s.fal_status,
        "request_id": s.id,
        **urls(s.id, s.base_url),
        "created_at": s.created_at,
        "completed_at": s.completed_at,
        "input": s.input,
    }
    if s.status_code is not None:
        ok = s.status_code == 200
        body["result"] = s.body if ok else None
        if not ok:
            body["error"] = error_text(s.body or {})
            body["error_type"] = s.error_type
    return body
