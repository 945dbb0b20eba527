"""The :class:`~kinema.jobs.store.JobStore` on SQLite (WAL) in the data dir.

Every method is one transaction; writes open it with ``BEGIN IMMEDIATE`` so that two processes
on one data dir (two ``kinema serve``, or a server and a ``kinema worker``) serialise their state
changes and a claim hands each job out exactly once. Three connections per store: one for writes,
one for reads (WAL readers never wait for a writer) and one that only reads ``PRAGMA data_version``
for the change feed (it sees this process's own commits too, because they come from another
connection). The SQL avoids SQLite-only forms (``INSERT OR REPLACE``, ``rowid``) so the PostgreSQL
backend can reuse it with ``SELECT … FOR UPDATE SKIP LOCKED`` in ``claim``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kinema.jobs.sqlite_rows import ACTIVE, COLS, row_job, translate, webhook_error
from kinema.jobs.sqlite_schema import connect, ensure_schema, input_summary
from kinema.jobs.states import JobState, check_transition
from kinema.jobs.store import (
    MAX_ATTEMPTS,
    Job,
    JobSummary,
    LogEntry,
    Outcome,
    Progress,
    StoreUnavailable,
    cancelled_outcome,
    disconnected_outcome,
    start_timeout_outcome,
)
from kinema.jobs.webhook_message import insert_delivery, webhook_body

__all__ = ["SqliteJobStore", "connect"]

T = TypeVar("T")


class SqliteJobStore:
    """The SQLite job store. Thread-safe; several processes may open one file."""

    def __init__(
        self,
        path: Path,
        *,
        price_per_second: float = 0.045,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ):
        self.path = path
        self._price = price_per_second
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s
        try:
            self._w = connect(path, busy_timeout_s=busy_timeout_s)
            ensure_schema(self._w)
            self._r = connect(path, busy_timeout_s=busy_timeout_s)
            self._m = connect(path, busy_timeout_s=busy_timeout_s)
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        self._wlock = threading.Lock()
        self._rlock = threading.Lock()
        self._mlock = threading.Lock()

    # Plumbing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # Waiting for this process's write connection is bounded by the busy timeout too: behind writes that
        # each wait out a lock held by another process, a submit otherwise took 3 x the timeout to get its 503.
        if not self._wlock.acquire(timeout=self._busy_timeout_s):
            raise StoreUnavailable("The job store is unavailable: its writes are waiting on a locked database")
        try:
            try:
                self._w.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            try:
                yield self._w
                self._w.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._w.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc) from exc
                raise
        finally:
            self._wlock.release()

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._rlock:
            try:
                return fn(self._r)
            except sqlite3.Error as exc:
                raise translate(exc) from exc

    @staticmethod
    def _load(conn: sqlite3.Connection, request_id: str, with_payload: bool = False) -> Job | None:
        cols = COLS + (", payload" if with_payload else "")
        r = conn.execute(f"SELECT {cols} FROM jobs WHERE id = ?", (request_id,)).fetchone()
        if r is None:
            return None
        return row_job(r[:23], r[23] if with_payload else None)

    def _log(self, conn: sqlite3.Connection, request_id: str, message: str, level: str, ts: float) -> None:
        row = conn.execute(
            "UPDATE jobs SET log_count = log_count + 1 WHERE id = ? RETURNING log_count", (request_id,)
        ).fetchone()
        if row is not None:
            conn.execute(
                "INSERT INTO job_logs (request_id, idx, message, level, source, ts) VALUES (?,?,?,?,?,?)",
                (request_id, int(row[0]) - 1, message, level, "USER", ts),
            )

    def _finish(self, conn: sqlite3.Connection, job: Job, outcome: Outcome, now: float) -> Job:
        """Make ``job`` terminal with ``outcome``: usage and the webhook delivery in the same transaction."""
        new = outcome.state
        check_transition(job.state, new)
        inference_time = outcome.inference_time
        if inference_time is None and job.started_at is not None:
            inference_time = now - job.started_at
        conn.execute(
            "UPDATE jobs SET state = ?, completed_at = ?, status_code = ?, result_body = ?, error_type = ?,"
            " output = ?, inference_time = ?, billed_seconds = ?, worker_id = NULL, lease_until = NULL"
            " WHERE id = ?",
            (
                new.value,
                now,
                outcome.status_code,
                json.dumps(outcome.body),
                outcome.error_type,
                None if outcome.output is None else json.dumps(outcome.output),
                inference_time,
                outcome.billed_seconds,
                job.id,
            ),
        )
        if outcome.ok:
            conn.execute(
                "INSERT INTO usage (request_id, key_id, billed_seconds, cost, recorded_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (request_id) DO NOTHING",
                (job.id, job.key_id, outcome.billed_seconds, round(outcome.billed_seconds * self._price, 6), now),
            )
        if job.webhook_url:
            body = webhook_body(job.id, job.id, outcome.ok, outcome.body, webhook_error(outcome))
            insert_delivery(conn, job.id, job.key_id, job.webhook_url, body, now)
        done = self._load(conn, job.id)
        assert done is not None
        return done

    # Submitting and claiming ------------------------------------------------------
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
        rid = str(uuid.uuid4())
        text, summary = json.dumps(payload), json.dumps(input_summary(payload))
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO jobs (id, key_id, state, priority, payload, input_summary, base_url, webhook_url,"
                " created_at, start_deadline) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    rid,
                    key_id,
                    JobState.QUEUED.value,
                    int(priority),
                    text,
                    summary,
                    base_url,
                    webhook_url,
                    self._clock(),
                    start_deadline,
                ),
            )
            job = self._load(conn, rid)
        assert job is not None
        return job

    def claim(self, worker_id: str, lease_s: float) -> Job | None:
        now = self._clock()
        with self._tx() as conn:
            # PostgreSQL: the same SELECT with FOR UPDATE SKIP LOCKED.
            row = conn.execute(
                "SELECT id FROM jobs WHERE state = ? AND (start_deadline IS NULL OR start_deadline >= ?)"
                " ORDER BY priority, seq LIMIT 1",
                (JobState.QUEUED.value, now),
            ).fetchone()
            if row is None:
                return None
            check_transition(JobState.QUEUED, JobState.RUNNING)
            conn.execute(
                "UPDATE jobs SET state = ?, worker_id = ?, lease_until = ?, attempts = attempts + 1, started_at = ?,"
                " progress_stage = NULL, progress_step = NULL, progress_total = NULL WHERE id = ? AND state = ?",
                (JobState.RUNNING.value, worker_id, now + lease_s, now, row[0], JobState.QUEUED.value),
            )
            return self._load(conn, row[0], with_payload=True)

    def heartbeat(self, request_id: str, worker_id: str, lease_s: float) -> JobState | None:
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker_id = ? AND state IN (?, ?) RETURNING state",
                (self._clock() + lease_s, request_id, worker_id, *ACTIVE),
            ).fetchone()
        return None if row is None else JobState(row[0])

    def append_log(self, request_id: str, message: str, level: str, ts: float) -> None:
        with self._tx() as conn:
            self._log(conn, request_id, message, level, ts)

    def set_progress(self, request_id: str, progress: Progress) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE jobs SET progress_stage = ?, progress_step = ?, progress_total = ? WHERE id = ?"
                " AND state IN (?, ?)",
                (progress.stage, progress.step, progress.total, request_id, *ACTIVE),
            )

    def complete(self, request_id: str, outcome: Outcome, *, worker_id: str | None) -> Job:
        now = self._clock()
        with self._tx() as conn:
            job = self._load(conn, request_id)
            if job is None:
                raise LookupError(f"no job {request_id}")
            if job.terminal or (worker_id is not None and job.worker_id != worker_id):
                return job
            return self._finish(conn, job, outcome, now)

    def request_cancel(self, request_id: str) -> Job | None:
        now = self._clock()
        with self._tx() as conn:
            job = self._load(conn, request_id)
            if job is None or job.terminal or job.state is JobState.CANCELLING:
                return job
            if job.state is JobState.QUEUED:
                self._log(conn, request_id, "cancelled while queued", "WARN", now)
                return self._finish(conn, job, cancelled_outcome(), now)
            check_transition(job.state, JobState.CANCELLING)
            conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (JobState.CANCELLING.value, request_id))
            self._log(conn, request_id, "cancellation requested", "WARN", now)
            return self._load(conn, request_id)

    # Reads ------------------------------------------------------------------------
    def get(self, request_id: str, *, with_payload: bool = False) -> Job | None:
        return self._read(lambda c: self._load(c, request_id, with_payload))

    def logs(self, request_id: str, start: int = 0) -> list[LogEntry]:
        rows = self._read(
            lambda c: c.execute(
                "SELECT idx, message, level, ts, source FROM job_logs WHERE request_id = ? AND idx >= ? ORDER BY idx",
                (request_id, start),
            ).fetchall()
        )
        return [LogEntry(int(i), m, lv, float(ts), src) for i, m, lv, ts, src in rows]

    def list(self, key_id: str, *, limit: int, before: str | None = None) -> list[JobSummary]:
        def q(c: sqlite3.Connection) -> builtins.list[tuple[Any, ...]]:
            bound = 2**62
            if before is not None:
                row = c.execute("SELECT seq FROM jobs WHERE id = ? AND key_id = ?", (before, key_id)).fetchone()
                if row is None:
                    return []
                bound = int(row[0])
            return c.execute(
                "SELECT id, seq, state, base_url, created_at, completed_at, input_summary, status_code, error_type,"
                " result_body FROM jobs WHERE key_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                (key_id, bound, limit),
            ).fetchall()

        return [
            JobSummary(
                id=r[0],
                seq=int(r[1]),
                state=JobState(r[2]),
                base_url=r[3],
                created_at=float(r[4]),
                completed_at=r[5],
                input=json.loads(r[6]),
                status_code=r[7],
                error_type=r[8],
                body=json.loads(r[9]) if r[9] else None,
            )
            for r in self._read(q)
        ]

    def queue_position(self, request_id: str) -> int:
        row = self._read(
            lambda c: c.execute(
                "SELECT COUNT(*) FROM jobs q JOIN jobs j ON j.id = ? WHERE j.state = ? AND q.state = ?"
                " AND (q.priority < j.priority OR (q.priority = j.priority AND q.seq < j.seq))",
                (request_id, JobState.QUEUED.value, JobState.QUEUED.value),
            ).fetchone()
        )
        return int(row[0])

    def usage(self, key_id: str) -> dict[str, float]:
        n, seconds, cost = self._read(
            lambda c: c.execute(
                "SELECT COUNT(*), COALESCE(SUM(billed_seconds), 0), COALESCE(SUM(cost), 0) FROM usage WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        )
        return {"requests": int(n), "billed_seconds": float(seconds), "cost_usd": round(float(cost), 6)}

    def running_on(self, worker_ids: Collection[str]) -> builtins.list[Job]:
        ids = [*worker_ids]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._read(
            lambda c: c.execute(
                f"SELECT {COLS} FROM jobs WHERE state IN (?, ?) AND worker_id IN ({marks}) ORDER BY seq",
                (*ACTIVE, *ids),
            ).fetchall()
        )
        return [row_job(r) for r in rows]

    # Housekeeping -----------------------------------------------------------------
    def expire_leases(self, now: float, *, max_attempts: int = MAX_ATTEMPTS) -> builtins.list[Job]:
        out: builtins.list[Job] = []
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {COLS} FROM jobs WHERE state IN (?, ?) AND lease_until < ? ORDER BY seq", (*ACTIVE, now)
            ).fetchall()
            for job in map(row_job, rows):
                if job.state is JobState.CANCELLING:
                    self._log(conn, job.id, "the runner stopped answering while cancelling", "WARN", now)
                    out.append(self._finish(conn, job, cancelled_outcome(), now))
                elif job.attempts < max_attempts:
                    check_transition(job.state, JobState.QUEUED)
                    self._log(
                        conn,
                        job.id,
                        "the runner stopped answering (its lease lapsed); running the request again",
                        "WARN",
                        now,
                    )
                    conn.execute(
                        "UPDATE jobs SET state = ?, worker_id = NULL, lease_until = NULL, started_at = NULL,"
                        " progress_stage = NULL, progress_step = NULL, progress_total = NULL WHERE id = ?",
                        (JobState.QUEUED.value, job.id),
                    )
                    requeued = self._load(conn, job.id)
                    assert requeued is not None
                    out.append(requeued)
                else:
                    self._log(conn, job.id, "the runner was interrupted again; giving up", "ERROR", now)
                    out.append(self._finish(conn, job, disconnected_outcome(), now))
        return out

    def expire_start_deadlines(self, now: float) -> builtins.list[Job]:
        out: builtins.list[Job] = []
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {COLS} FROM jobs WHERE state = ? AND start_deadline < ? ORDER BY seq",
                (JobState.QUEUED.value, now),
            ).fetchall()
            for job in map(row_job, rows):
                self._log(conn, job.id, "the request timed out before processing started", "ERROR", now)
                out.append(self._finish(conn, job, start_timeout_outcome(), now))
        return out

    def purge(self, older_than: float) -> builtins.list[Job]:
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {COLS} FROM jobs WHERE state IN (?, ?, ?) AND completed_at < ?",
                (JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.CANCELLED.value, older_than),
            ).fetchall()
            jobs = [row_job(r) for r in rows]
            for job in jobs:
                conn.execute("DELETE FROM job_logs WHERE request_id = ?", (job.id,))
                conn.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
        return jobs

    def change_counter(self) -> int:
        with self._mlock:
            try:
                (value,) = self._m.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error as exc:
                raise translate(exc) from exc
        return int(value)

    def close(self) -> None:
        for lock, conn in ((self._wlock, self._w), (self._rlock, self._r), (self._mlock, self._m)):
            with lock:
                conn.close()
