"""The SQLite schema of the job store, versioned with ``PRAGMA user_version``, and its upgrades.

Version 0 is an empty file or the store of kinema ≤ 0.1 (``jobs`` with fal's three statuses,
``job_logs`` with ISO timestamps, ``usage``); version 2 is the jobs core of issue 8 (internal
states, leases, progress, database-assigned ``seq``). An upgrade runs in one transaction, so an
interrupted one leaves the old schema intact. The SQL sticks to what PostgreSQL also accepts
(``INTEGER PRIMARY KEY AUTOINCREMENT`` becomes ``BIGSERIAL`` there).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "connect", "ensure_schema", "input_summary"]

#: Strings longer than this in a request's input are left out of its summary (data URIs, mostly).
SUMMARY_MAX_STRING = 2048

SCHEMA_VERSION = 2

_TABLES = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    input_summary TEXT NOT NULL DEFAULT '{}',
    base_url TEXT NOT NULL,
    webhook_url TEXT,
    created_at REAL NOT NULL,
    start_deadline REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    completed_at REAL,
    worker_id TEXT,
    lease_until REAL,
    progress_stage TEXT,
    progress_step INTEGER,
    progress_total INTEGER,
    status_code INTEGER,
    result_body TEXT,
    error_type TEXT,
    output TEXT,
    inference_time REAL,
    billed_seconds REAL NOT NULL DEFAULT 0,
    log_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(state, priority, seq);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key_id, seq);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs(state, lease_until);
CREATE INDEX IF NOT EXISTS jobs_completed ON jobs(completed_at);
CREATE TABLE IF NOT EXISTS job_logs (
    request_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    message TEXT NOT NULL,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (request_id, idx)
);
CREATE TABLE IF NOT EXISTS usage (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    billed_seconds REAL NOT NULL,
    cost REAL NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_key ON usage(key_id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_request ON webhook_deliveries(request_id);
"""


def input_summary(payload: Any) -> Any:
    """The input as ``/requests`` lists it: ``data:`` URIs and other long strings become ``None``."""
    if isinstance(payload, dict):
        return {k: input_summary(v) for k, v in payload.items()}
    if isinstance(payload, list):
        return [input_summary(v) for v in payload]
    if isinstance(payload, str) and (payload.startswith("data:") or len(payload) > SUMMARY_MAX_STRING):
        return None
    return payload


def connect(path: Path, *, busy_timeout_s: float = 30.0) -> sqlite3.Connection:
    """An autocommit connection in WAL mode (transactions are opened explicitly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _epoch(iso: str, default: float) -> float:
    try:
        return dt.datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return default


def _upgrade_from_v1(conn: sqlite3.Connection) -> None:
    """Copy a kinema ≤ 0.1 store into the version-2 tables.

    Old ``IN_QUEUE`` stays queued; old ``IN_PROGRESS`` (the server died while it ran) is queued
    again with its attempts kept, so the lease rule gives it the same one retry as before;
    ``COMPLETED`` maps to SUCCEEDED / CANCELLED / FAILED by its result.
    """
    conn.execute("ALTER TABLE jobs RENAME TO jobs_v1")
    conn.execute("DROP INDEX IF EXISTS jobs_key")
    conn.execute("DROP INDEX IF EXISTS jobs_status")
    old_logs = "job_logs" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if old_logs and "timestamp" in _columns(conn, "job_logs"):
        conn.execute("ALTER TABLE job_logs RENAME TO job_logs_v1")
    for statement in _TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    rows = conn.execute(
        "SELECT id, key_id, status, priority, seq, input, base_url, webhook_url, created_at, started_at,"
        " completed_at, start_deadline, attempts, result_status, result_body, error_type, inference_time,"
        " billed_seconds FROM jobs_v1 ORDER BY seq"
    ).fetchall()
    for r in rows:
        (
            rid,
            key_id,
            status,
            priority,
            seq,
            payload,
            base_url,
            webhook_url,
            created_at,
            started_at,
            completed_at,
            start_deadline,
            attempts,
            result_status,
            result_body,
            error_type,
            inference_time,
            billed,
        ) = r
        output = None
        if status == "COMPLETED":
            if result_status == 200:
                state = "SUCCEEDED"
                body = json.loads(result_body) if result_body else None
                if isinstance(body, dict) and isinstance(body.get("video"), dict):
                    output = json.dumps(body["video"])
            elif error_type == "request_cancelled":
                state = "CANCELLED"
            else:
                state = "FAILED"
        else:
            state, started_at = "QUEUED", None
        conn.execute(
            "INSERT INTO jobs (seq, id, key_id, state, priority, payload, input_summary, base_url, webhook_url,"
            " created_at,"
            " start_deadline, attempts, started_at, completed_at, status_code, result_body, error_type, output,"
            " inference_time, billed_seconds) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                rid,
                key_id,
                state,
                priority,
                payload,
                json.dumps(input_summary(json.loads(payload))),
                base_url,
                webhook_url,
                created_at,
                start_deadline,
                attempts,
                started_at,
                completed_at,
                result_status,
                result_body,
                error_type,
                output,
                inference_time,
                billed or 0.0,
            ),
        )
    conn.execute("DROP TABLE jobs_v1")
    if old_logs and "job_logs_v1" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}:
        for rid, idx, message, level, source, stamp in conn.execute(
            "SELECT request_id, idx, message, level, source, timestamp FROM job_logs_v1"
        ).fetchall():
            conn.execute(
                "INSERT INTO job_logs VALUES (?,?,?,?,?,?)", (rid, idx, message, level, source, _epoch(stamp, 0.0))
            )
        conn.execute("DROP TABLE job_logs_v1")
        conn.execute("UPDATE jobs SET log_count = (SELECT COUNT(*) FROM job_logs WHERE request_id = jobs.id)")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema to :data:`SCHEMA_VERSION` (idempotent; safe with several processes)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()  # another process may have won
        if version < SCHEMA_VERSION:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "jobs" in tables and "state" not in _columns(conn, "jobs"):
                _upgrade_from_v1(conn)
            else:
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database schema is version {version}; this kinema knows up to {SCHEMA_VERSION} (upgrade kinema)"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
