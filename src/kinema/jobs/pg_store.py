"""The :class:`~kinema.jobs.store.JobStore` on PostgreSQL (psycopg 3 with a connection pool).

Several API servers and standalone workers share one database. Every method is one transaction on
a pooled connection; a claim takes the next QUEUED job with ``SELECT … FOR UPDATE SKIP LOCKED`` in
priority order, so concurrent claimers never wait on each other and each job is handed out once.
Read-modify-write moves (complete, cancel, lease expiry) lock the job's row first, so a cancel and
a completion of one job serialise as they do under SQLite's ``BEGIN IMMEDIATE``. Rows have the
SQLite store's format (:mod:`kinema.jobs.pg_schema`), decoded by the same function.

After a PostgreSQL restart the pool replaces its dead connections by itself (a stale one fails on
its first statement and the call is retried once on a fresh one); while the database is down, calls raise
:class:`~kinema.errors.StoreUnavailable` (503), and :class:`~kinema.errors.StoreFull` (507) when
its disk is full.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from kinema.jobs.pg_schema import upgrade
from kinema.jobs.sqlite_rows import COLS, row_job, webhook_error
from kinema.jobs.sqlite_schema import input_summary
from kinema.jobs.states import DeliveryState, JobState, check_transition
from kinema.jobs.store import (
    MAX_ATTEMPTS,
    Job,
    JobSummary,
    LogEntry,
    Outcome,
    Progress,
    StoreFull,
    StoreUnavailable,
    cancelled_outcome,
    disconnected_outcome,
    start_timeout_outcome,
)
from kinema.jobs.webhooks import webhook_body

__all__ = ["PgJobStore", "connect", "translate_error"]

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]

_ACTIVE = (JobState.RUNNING.value, JobState.CANCELLING.value)
_TERMINAL = (JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.CANCELLED.value)


def translate_error(exc: Exception) -> Exception:
    """The kinema error for a database failure (a programming error is returned unchanged)."""
    if isinstance(exc, psycopg.errors.DiskFull):
        return StoreFull("The disk holding the job store is full")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StoreUnavailable(f"The job store is unavailable: {first}")
    return exc


def connect(url: str, *, timeout_s: float = 10.0) -> Conn:
    """One autocommit connection (schema upgrades, LISTEN); StoreUnavailable when the server cannot be reached."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout_s)))
    except psycopg.Error as exc:
        raise translate_error(exc) from exc


class PgJobStore:
    """The PostgreSQL job store. Thread-safe; any number of processes and machines may open one database."""

    def __init__(
        self,
        url: str,
        *,
        price_per_second: float = 0.045,
        pool_size: int = 12,
        busy_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ):
        self.url = url
        self._price = price_per_second
        self._clock = clock
        conn = connect(url, timeout_s=busy_timeout_s)
        try:
            upgrade(conn)
        except psycopg.Error as exc:
            raise translate_error(exc) from exc
        finally:
            conn.close()
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, pool_size),
            kwargs={"autocommit": True},
            timeout=busy_timeout_s,
            open=True,
            name="kinema-jobs",
        )

    # Plumbing ---------------------------------------------------------------------
    # Connections are not checked when taken from the pool (that costs a round trip on every call of
    # the status hot path). A connection that went stale (PostgreSQL restarted) fails on its first
    # statement, before anything of ours ran: it is dropped and the call retried once on a fresh one.
    @contextlib.contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[Conn]:
        """One transaction. ``durable=False`` commits without waiting for the WAL flush: for logs and
        progress only, where a PostgreSQL crash may lose the last few ms of them and nothing else
        (a job's state changes always wait for the flush)."""
        try:
            for attempt in (1, 2):
                with self._pool.connection() as conn:
                    try:
                        conn.execute("BEGIN" if durable else "BEGIN; SET LOCAL synchronous_commit TO OFF")
                    except psycopg.OperationalError:
                        if attempt == 2 or not conn.broken:
                            raise
                        self._drop_stale()
                        continue  # the pool discards this broken one on the way out
                    try:
                        yield conn
                    except BaseException:
                        if not conn.broken:
                            with contextlib.suppress(psycopg.Error):
                                conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
                    return
        except (psycopg.Error, PoolTimeout) as exc:
            raise translate_error(exc) from exc

    def _read(self, fn: Callable[[Conn], T]) -> T:
        """A read on a pooled connection (autocommit: one statement, one snapshot); retried once on a
        connection that turned out stale."""
        try:
            for attempt in (1, 2):
                with self._pool.connection() as conn:
                    try:
                        return fn(conn)
                    except psycopg.OperationalError:
                        if attempt == 2 or not conn.broken:
                            raise
                        self._drop_stale()
            raise AssertionError("unreachable")
        except (psycopg.Error, PoolTimeout) as exc:
            raise translate_error(exc) from exc

    def _drop_stale(self) -> None:
        """One connection was stale, so its idle siblings probably are too (a restart): check them all now."""
        with contextlib.suppress(psycopg.Error, PoolTimeout):
            self._pool.check()

    @staticmethod
    def _load(conn: Conn, request_id: str, with_payload: bool = False, *, lock: bool = False) -> Job | None:
        cols = COLS + (", payload" if with_payload else "")
        r = conn.execute(
            f"SELECT {cols} FROM jobs WHERE id = %s" + (" FOR UPDATE" if lock else ""), (request_id,)
        ).fetchone()
        if r is None:
            return None
        return row_job(r[:23], r[23] if with_payload else None)

    @staticmethod
    def _log(conn: Conn, request_id: str, message: str, level: str, ts: float) -> None:
        row = conn.execute(
            "UPDATE jobs SET log_count = log_count + 1 WHERE id = %s RETURNING log_count", (request_id,)
        ).fetchone()
        if row is not None:
            conn.execute(
                "INSERT INTO job_logs (request_id, idx, message, level, source, ts) VALUES (%s,%s,%s,%s,%s,%s)",
                (request_id, int(row[0]) - 1, message, level, "USER", ts),
            )

    def _finish(self, conn: Conn, job: Job, outcome: Outcome, now: float) -> Job:
        """Make ``job`` (row locked) terminal: usage and the webhook delivery in the same transaction."""
        new = outcome.state
        check_transition(job.state, new)
        inference_time = outcome.inference_time
        if inference_time is None and job.started_at is not None:
            inference_time = now - job.started_at
        conn.execute(
            "UPDATE jobs SET state = %s, completed_at = %s, status_code = %s, result_body = %s, error_type = %s,"
            " output = %s, inference_time = %s, billed_seconds = %s, worker_id = NULL, lease_until = NULL"
            " WHERE id = %s",
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
                "INSERT INTO usage (request_id, key_id, billed_seconds, cost, recorded_at) VALUES (%s,%s,%s,%s,%s)"
                " ON CONFLICT (request_id) DO NOTHING",
                (job.id, job.key_id, outcome.billed_seconds, round(outcome.billed_seconds * self._price, 6), now),
            )
        if job.webhook_url:
            body = webhook_body(job.id, job.id, outcome.ok, outcome.body, webhook_error(outcome))
            conn.execute(
                "INSERT INTO webhook_deliveries (request_id, user_id, url, body, attempts, next_attempt_at, status,"
                " created_at, updated_at) VALUES (%s, %s, %s, %s, 0, %s, %s, %s, %s)",
                (job.id, job.key_id, job.webhook_url, body, now, DeliveryState.PENDING.value, now, now),
            )
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
                " created_at, start_deadline) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
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
        check_transition(JobState.QUEUED, JobState.RUNNING)
        with self._tx() as conn:
            row = conn.execute(
                "SELECT id FROM jobs WHERE state = %s AND (start_deadline IS NULL OR start_deadline >= %s)"
                " ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                (JobState.QUEUED.value, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = %s, worker_id = %s, lease_until = %s, attempts = attempts + 1,"
                " started_at = %s, progress_stage = NULL, progress_step = NULL, progress_total = NULL WHERE id = %s",
                (JobState.RUNNING.value, worker_id, now + lease_s, now, row[0]),
            )
            return self._load(conn, row[0], with_payload=True)

    def heartbeat(self, request_id: str, worker_id: str, lease_s: float) -> JobState | None:
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE jobs SET lease_until = %s WHERE id = %s AND worker_id = %s AND state IN (%s, %s)"
                " RETURNING state",
                (self._clock() + lease_s, request_id, worker_id, *_ACTIVE),
            ).fetchone()
        return None if row is None else JobState(row[0])

    def append_log(self, request_id: str, message: str, level: str, ts: float) -> None:
        with self._tx(durable=False) as conn:
            self._log(conn, request_id, message, level, ts)

    def set_progress(self, request_id: str, progress: Progress) -> None:
        with self._tx(durable=False) as conn:
            conn.execute(
                "UPDATE jobs SET progress_stage = %s, progress_step = %s, progress_total = %s WHERE id = %s"
                " AND state IN (%s, %s)",
                (progress.stage, progress.step, progress.total, request_id, *_ACTIVE),
            )

    def complete(self, request_id: str, outcome: Outcome, *, worker_id: str | None) -> Job:
        now = self._clock()
        with self._tx() as conn:
            job = self._load(conn, request_id, lock=True)
            if job is None:
                raise LookupError(f"no job {request_id}")
            if job.terminal or (worker_id is not None and job.worker_id != worker_id):
                return job
            return self._finish(conn, job, outcome, now)

    def request_cancel(self, request_id: str) -> Job | None:
        now = self._clock()
        with self._tx() as conn:
            job = self._load(conn, request_id, lock=True)
            if job is None or job.terminal or job.state is JobState.CANCELLING:
                return job
            if job.state is JobState.QUEUED:
                self._log(conn, request_id, "cancelled while queued", "WARN", now)
                return self._finish(conn, job, cancelled_outcome(), now)
            check_transition(job.state, JobState.CANCELLING)
            conn.execute("UPDATE jobs SET state = %s WHERE id = %s", (JobState.CANCELLING.value, request_id))
            self._log(conn, request_id, "cancellation requested", "WARN", now)
            return self._load(conn, request_id)

    # Reads ------------------------------------------------------------------------
    def get(self, request_id: str, *, with_payload: bool = False) -> Job | None:
        return self._read(lambda c: self._load(c, request_id, with_payload))

    def logs(self, request_id: str, start: int = 0) -> list[LogEntry]:
        rows = self._read(
            lambda c: c.execute(
                "SELECT idx, message, level, ts, source FROM job_logs WHERE request_id = %s AND idx >= %s ORDER BY idx",
                (request_id, start),
            ).fetchall()
        )
        return [LogEntry(int(i), m, lv, float(ts), src) for i, m, lv, ts, src in rows]

    def list(self, key_id: str, *, limit: int, before: str | None = None) -> list[JobSummary]:
        def q(c: Conn) -> builtins.list[tuple[Any, ...]]:
            bound = 2**62
            if before is not None:
                row = c.execute("SELECT seq FROM jobs WHERE id = %s AND key_id = %s", (before, key_id)).fetchone()
                if row is None:
                    return []
                bound = int(row[0])
            return c.execute(
                "SELECT id, seq, state, base_url, created_at, completed_at, input_summary, status_code, error_type,"
                " result_body FROM jobs WHERE key_id = %s AND seq < %s ORDER BY seq DESC LIMIT %s",
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
                "SELECT COUNT(*) FROM jobs q JOIN jobs j ON j.id = %s WHERE j.state = %s AND q.state = %s"
                " AND (q.priority < j.priority OR (q.priority = j.priority AND q.seq < j.seq))",
                (request_id, JobState.QUEUED.value, JobState.QUEUED.value),
            ).fetchone()
        )
        return int(row[0]) if row else 0

    def usage(self, key_id: str) -> dict[str, float]:
        row = self._read(
            lambda c: c.execute(
                "SELECT COUNT(*), COALESCE(SUM(billed_seconds), 0), COALESCE(SUM(cost), 0) FROM usage"
                " WHERE key_id = %s",
                (key_id,),
            ).fetchone()
        )
        n, seconds, cost = row if row else (0, 0.0, 0.0)
        return {"requests": int(n), "billed_seconds": float(seconds), "cost_usd": round(float(cost), 6)}

    def running_on(self, worker_ids: Collection[str]) -> builtins.list[Job]:
        ids = [*worker_ids]
        if not ids:
            return []
        rows = self._read(
            lambda c: c.execute(
                f"SELECT {COLS} FROM jobs WHERE state IN (%s, %s) AND worker_id = ANY(%s) ORDER BY seq",
                (*_ACTIVE, ids),
            ).fetchall()
        )
        return [row_job(r) for r in rows]

    # Housekeeping (every server and worker runs it; SKIP LOCKED shares the rows out) -----------------------
    def expire_leases(self, now: float, *, max_attempts: int = MAX_ATTEMPTS) -> builtins.list[Job]:
        out: builtins.list[Job] = []
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {COLS} FROM jobs WHERE state IN (%s, %s) AND lease_until < %s ORDER BY seq"
                " FOR UPDATE SKIP LOCKED",
                (*_ACTIVE, now),
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
                        "UPDATE jobs SET state = %s, worker_id = NULL, lease_until = NULL, started_at = NULL,"
                        " progress_stage = NULL, progress_step = NULL, progress_total = NULL WHERE id = %s",
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
                f"SELECT {COLS} FROM jobs WHERE state = %s AND start_deadline < %s ORDER BY seq FOR UPDATE SKIP LOCKED",
                (JobState.QUEUED.value, now),
            ).fetchall()
            for job in map(row_job, rows):
                self._log(conn, job.id, "the request timed out before processing started", "ERROR", now)
                out.append(self._finish(conn, job, start_timeout_outcome(), now))
        return out

    def purge(self, older_than: float) -> builtins.list[Job]:
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {COLS} FROM jobs WHERE state IN (%s, %s, %s) AND completed_at < %s FOR UPDATE SKIP LOCKED",
                (*_TERMINAL, older_than),
            ).fetchall()
            jobs = [row_job(r) for r in rows]
            if jobs:
                ids = [job.id for job in jobs]
                conn.execute("DELETE FROM job_logs WHERE request_id = ANY(%s)", (ids,))
                conn.execute("DELETE FROM jobs WHERE id = ANY(%s)", (ids,))
        return jobs

    def change_counter(self) -> int:
        row = self._read(lambda c: c.execute("SELECT last_value + (is_called::int) FROM kinema_changes_seq").fetchone())
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._pool.close()
