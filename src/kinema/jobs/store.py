"""The durable job store: SQLite in WAL mode inside the data dir.

The dispatcher keeps live jobs in memory for cheap status reads and writes every state change
here, so that a restart (even after ``kill -9``) finds each accepted request again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from kinema.jobs.status import Priority, Status

__all__ = ["Job", "LogEntry", "JobStore", "connect"]


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    input TEXT NOT NULL,
    base_url TEXT NOT NULL,
    webhook_url TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    start_deadline REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result_status INTEGER,
    result_body TEXT,
    error_type TEXT,
    inference_time REAL,
    billed_seconds REAL NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    output_file TEXT
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS job_logs (
    request_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    message TEXT NOT NULL,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    PRIMARY KEY (request_id, idx)
);
CREATE TABLE IF NOT EXISTS usage (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    billed_seconds REAL NOT NULL,
    cost REAL NOT NULL,
    recorded_at REAL NOT NULL
);
"""


@dataclass
class LogEntry:
    message: str
    level: str = "INFO"
    source: str = "USER"
    timestamp: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"message": self.message, "level": self.level, "source": self.source, "timestamp": self.timestamp}


@dataclass
class Job:
    id: str
    key_id: str
    input: dict[str, Any]
    base_url: str
    seq: int
    status: Status = Status.IN_QUEUE
    priority: Priority = Priority.NORMAL
    webhook_url: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    start_deadline: float | None = None
    attempts: int = 0
    result_status: int | None = None
    result_body: Any = None
    error_type: str | None = None
    inference_time: float | None = None
    billed_seconds: float = 0.0
    cost: float = 0.0
    output_file: str | None = None
    logs: list[LogEntry] = field(default_factory=list)
    # Not persisted: live progress and cancellation.
    progress: tuple[int, int] | None = None
    cancel_requested: bool = False

    @property
    def ok(self) -> bool:
        return self.status is Status.COMPLETED and self.result_status == 200


class JobStore:
    """Thread-safe wrapper around one SQLite connection."""

    def __init__(self, path: Path):
        self.path = path
        self._conn = connect(path)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # Writes -----------------------------------------------------------------
    def insert(self, job: Job) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO jobs (id, key_id, status, priority, seq, input, base_url, webhook_url, created_at,"
                " start_deadline) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (job.id, job.key_id, job.status.value, int(job.priority), job.seq, json.dumps(job.input),
                 job.base_url, job.webhook_url, job.created_at, job.start_deadline),
            )

    def save(self, job: Job) -> None:
        """Persist the mutable fields of ``job``."""
        with self._lock:
            self._conn.execute(
                "UPDATE jobs SET status=?, started_at=?, completed_at=?, attempts=?, result_status=?, result_body=?,"
                " error_type=?, inference_time=?, billed_seconds=?, cost=?, output_file=? WHERE id=?",
                (job.status.value, job.started_at, job.completed_at, job.attempts, job.result_status,
                 None if job.result_body is None else json.dumps(job.result_body), job.error_type,
                 job.inference_time, job.billed_seconds, job.cost, job.output_file, job.id),
            )

    def append_log(self, request_id: str, idx: int, entry: LogEntry) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO job_logs VALUES (?,?,?,?,?,?)",
                (request_id, idx, entry.message, entry.level, entry.source, entry.timestamp),
            )

    def record_usage(self, job: Job) -> None:
        """Usage outlives the job record (results are purged after the retention period)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO usage VALUES (?,?,?,?,?)",
                (job.id, job.key_id, job.billed_seconds, job.cost, time.time()),
            )

    def delete(self, request_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM jobs WHERE id=?", (request_id,))
            self._conn.execute("DELETE FROM job_logs WHERE request_id=?", (request_id,))

    # Reads ------------------------------------------------------------------
    def load_all(self) -> Iterator[Job]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, key_id, status, priority, seq, input, base_url, webhook_url, created_at, started_at,"
                " completed_at, start_deadline, attempts, result_status, result_body, error_type, inference_time,"
                " billed_seconds, cost, output_file FROM jobs ORDER BY seq"
            ).fetchall()
            logs: dict[str, list[LogEntry]] = {}
            for rid, message, level, source, ts in self._conn.execute(
                "SELECT request_id, message, level, source, timestamp FROM job_logs ORDER BY request_id, idx"
            ):
                logs.setdefault(rid, []).append(LogEntry(message, level, source, ts))
        for r in rows:
            yield Job(
                id=r[0], key_id=r[1], status=Status(r[2]), priority=Priority(r[3]), seq=r[4],
                input=json.loads(r[5]), base_url=r[6], webhook_url=r[7], created_at=r[8], started_at=r[9],
                completed_at=r[10], start_deadline=r[11], attempts=r[12], result_status=r[13],
                result_body=None if r[14] is None else json.loads(r[14]), error_type=r[15], inference_time=r[16],
                billed_seconds=r[17], cost=r[18], output_file=r[19], logs=logs.get(r[0], []),
            )

    def max_seq(self) -> int:
        with self._lock:
            (value,) = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()
        return int(value)

    def usage(self, key_id: str) -> dict[str, float]:
        with self._lock:
            n, seconds, cost = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(billed_seconds),0), COALESCE(SUM(cost),0) FROM usage WHERE key_id=?",
                (key_id,),
            ).fetchone()
        return {"requests": int(n), "billed_seconds": float(seconds), "cost_usd": round(float(cost), 6)}
