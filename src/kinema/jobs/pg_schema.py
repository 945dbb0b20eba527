"""The PostgreSQL schema of the job store (jobs, logs, usage, webhook outbox, API keys) and its migrations.

Migrations are numbered and applied in order, each in the transaction that records it in
``kinema_schema``. :func:`upgrade` takes a transaction-scoped advisory lock first, so two servers
(or a server and ``kinema db upgrade``) starting at once apply each migration exactly once: the
second waits for the lock, then finds nothing left to do. A database newer than this kinema is
refused rather than guessed at.

The tables mirror the SQLite ones (:mod:`kinema.jobs.sqlite_schema`) column for column, so both
stores share one row format; times are seconds since the epoch (``DOUBLE PRECISION``), JSON is text.
Every statement that changes ``jobs``, ``job_logs`` or ``webhook_deliveries`` sends one
``NOTIFY kinema_changes`` at commit (a statement trigger; PostgreSQL folds repeats within a
transaction into one), which :class:`~kinema.jobs.pg_feed.PgChangeFeed` turns into wake-ups on
every server and worker.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psycopg

__all__ = ["CHANNEL", "MIGRATIONS", "SCHEMA_VERSION", "current_version", "upgrade"]

#: The NOTIFY channel of store changes.
CHANNEL = "kinema_changes"
#: ``pg_advisory_xact_lock`` key that serialises migrations ("kinema" in ASCII).
_LOCK_KEY = 0x6B696E656D61

_V1 = f"""
CREATE TABLE jobs (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    input_summary TEXT NOT NULL DEFAULT '{{}}',
    base_url TEXT NOT NULL,
    webhook_url TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    start_deadline DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION,
    worker_id TEXT,
    lease_until DOUBLE PRECISION,
    progress_stage TEXT,
    progress_step INTEGER,
    progress_total INTEGER,
    status_code INTEGER,
    result_body TEXT,
    error_type TEXT,
    output TEXT,
    inference_time DOUBLE PRECISION,
    billed_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    log_count INTEGER NOT NULL DEFAULT 0
);
-- The claim's "next QUEUED job" is an index scan of this partial index.
CREATE INDEX jobs_queue ON jobs (priority, seq) WHERE state = 'QUEUED';
CREATE INDEX jobs_key ON jobs (key_id, seq);
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state IN ('RUNNING', 'CANCELLING');
CREATE INDEX jobs_completed ON jobs (completed_at);
CREATE TABLE job_logs (
    request_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    message TEXT NOT NULL,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (request_id, idx)
);
CREATE TABLE usage (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    billed_seconds DOUBLE PRECISION NOT NULL,
    cost DOUBLE PRECISION NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX usage_key ON usage (key_id);
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BYTEA NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_request ON webhook_deliveries (request_id);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    salt TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    label TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
-- Moves on every change (read by JobStore.change_counter); not transactional, so no row lock to queue on.
CREATE SEQUENCE kinema_changes_seq;
CREATE FUNCTION kinema_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('kinema_changes_seq');
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE OR DELETE ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION kinema_notify_change();
CREATE TRIGGER webhook_deliveries_changed AFTER INSERT OR UPDATE OR DELETE ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION kinema_notify_change();
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION kinema_notify_change();
"""

#: (version, SQL) in order. Append new migrations; never edit one that has shipped.
MIGRATIONS: Sequence[tuple[int, str]] = ((1, _V1),)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def current_version(conn: psycopg.Connection) -> int:
    """The newest migration applied (0 for an empty database)."""
    exists = conn.execute("SELECT to_regclass('kinema_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM kinema_schema").fetchone()
    return int(row[0]) if row else 0


def upgrade(conn: psycopg.Connection) -> tuple[int, int]:
    """Apply the missing migrations under an advisory lock; returns (version before, version after).

    ``conn`` must not be inside a transaction; this opens (and commits) its own.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kinema_schema (version INTEGER PRIMARY KEY,"
            " applied_at DOUBLE PRECISION NOT NULL)"
        )
        before = current_version(conn)
        if before > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database schema is version {before}; this kinema knows up to {SCHEMA_VERSION} (upgrade kinema)"
            )
        for version, sql in MIGRATIONS:
            if version > before:
                conn.execute(sql.encode())  # several statements: simple query protocol, no parameters
                conn.execute("INSERT INTO kinema_schema (version, applied_at) VALUES (%s, %s)", (version, time.time()))
    return before, SCHEMA_VERSION
