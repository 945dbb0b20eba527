"""What only the SQLite backend has: the upgrade of an old data dir, lock timeouts and a full disk."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinema.errors import StoreFull, StoreUnavailable
from kinema.jobs.sqlite_schema import SCHEMA_VERSION
from kinema.jobs.sqlite_store import SqliteJobStore
from kinema.jobs.states import JobState

# The tables of kinema 0.1 (before the jobs core), as its store created them.
_OLD_SCHEMA = """
CREATE TABLE jobs (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, status TEXT NOT NULL, priority INTEGER NOT NULL
    DEFAULT 0, seq INTEGER NOT NULL, input TEXT NOT NULL, base_url TEXT NOT NULL, webhook_url TEXT,
    created_at REAL NOT NULL, started_at REAL, completed_at REAL, start_deadline REAL, attempts INTEGER NOT NULL
    DEFAULT 0, result_status INTEGER, result_body TEXT, error_type TEXT, inference_time REAL, billed_seconds REAL
    NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0, output_file TEXT);
CREATE INDEX jobs_key ON jobs(key_id, created_at);
CREATE INDEX jobs_status ON jobs(status);
CREATE TABLE job_logs (request_id TEXT NOT NULL, idx INTEGER NOT NULL, message TEXT NOT NULL, level TEXT NOT NULL,
    source TEXT NOT NULL, timestamp TEXT NOT NULL, PRIMARY KEY (request_id, idx));
CREATE TABLE usage (request_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, billed_seconds REAL NOT NULL,
    cost REAL NOT NULL, recorded_at REAL NOT NULL);
CREATE TABLE webhook_deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, user_id TEXT NOT
    NULL, url TEXT NOT NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', last_error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
"""


def _old_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_SCHEMA)
    video = {"url": "http://h/files/v.mp4", "content_type": "video/mp4"}
    rows = [
        ("done", "COMPLETED", 1, 200, json.dumps({"video": video}), None),
        ("gone", "COMPLETED", 2, 400, json.dumps({"detail": "Request was cancelled"}), "request_cancelled"),
        ("running", "IN_PROGRESS", 3, None, None, None),
        ("waiting", "IN_QUEUE", 4, None, None, None),
    ]
    for rid, status, seq, code, body, etype in rows:
        conn.execute(
            "INSERT INTO jobs (id, key_id, status, seq, input, base_url, created_at, attempts, result_status,"
            " result_body, error_type, billed_seconds) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                rid,
                "k1",
                status,
                seq,
                json.dumps({"prompt": rid}),
                "http://h",
                1000.0 + seq,
                1 if status != "IN_QUEUE" else 0,
                code,
                body,
                etype,
                5.0 if code == 200 else 0.0,
            ),
        )
    conn.execute("INSERT INTO job_logs VALUES ('done', 0, 'hello', 'INFO', 'USER', '2026-01-02T03:04:05.5Z')")
    conn.execute("INSERT INTO usage VALUES ('done', 'k1', 5.0, 0.225, 1001.0)")
    conn.execute(
        "INSERT INTO webhook_deliveries (request_id, user_id, url, body, next_attempt_at, created_at,"
        " updated_at) VALUES ('done', 'k1', 'http://r/', x'7b7d', 0, 0, 0)"
    )
    conn.commit()
    conn.close()


def test_an_old_data_dir_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "kinema.sqlite3"
    _old_store(path)
    store = SqliteJobStore(path)
    try:
        done, gone, running, waiting = (store.get(r, with_payload=True) for r in ("done", "gone", "running", "waiting"))
        assert done is not None and done.state is JobState.SUCCEEDED and done.outcome is not None
        assert done.outcome.output == {"url": "http://h/files/v.mp4", "content_type": "video/mp4"}
        assert done.payload == {"prompt": "done"}
        assert gone is not None and gone.state is JobState.CANCELLED
        # A job the old server was running when it stopped runs again (its one retry), then the queue goes on.
        assert running is not None and running.state is JobState.QUEUED and running.attempts == 1
        assert waiting is not None and waiting.state is JobState.QUEUED
        first = store.claim("w", 30)
        assert first is not None and first.id == "running" and first.attempts == 2
        assert [e.message for e in store.logs("done")] == ["hello"]
        assert store.logs("done")[0].ts == pytest.approx(1767323045.5)
        assert store.usage("k1")["billed_seconds"] == 5.0
        fresh = store.submit(key_id="k1", payload={}, priority=0, base_url="h", webhook_url=None, start_deadline=None)
        assert fresh.seq == 5
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT status FROM webhook_deliveries").fetchone()[0] == "pending"
    conn.close()
    SqliteJobStore(path).close()  # opening again is a no-op


_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_a_write_locked_past_the_timeout_is_store_unavailable_and_reads_go_on(tmp_path: Path) -> None:
    path = tmp_path / "kinema.sqlite3"
    store = SqliteJobStore(path, busy_timeout_s=0.5)
    rid = store.submit(key_id="k", payload={}, priority=0, base_url="h", webhook_url=None, start_deadline=None).id
    locker = subprocess.Popen([sys.executable, "-c", _LOCKER, str(path), "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            store.submit(key_id="k", payload={}, priority=0, base_url="h", webhook_url=None, start_deadline=None)
        assert info.value.status_code == 503 and time.monotonic() - t0 < 2.5
        job = store.get(rid)  # WAL readers do not wait for the writer
        assert job is not None and job.state is JobState.QUEUED
    finally:
        locker.wait(10)
    assert store.claim("w", 30) is not None  # and it works again once the lock is gone
    store.close()


def test_a_full_disk_is_store_full_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kinema.sqlite3"
    store = SqliteJobStore(path)
    rid = store.submit(key_id="k", payload={}, priority=0, base_url="h", webhook_url=None, start_deadline=None).id
    store.claim("w", 30)
    (pages,) = store._w.execute("PRAGMA page_count").fetchone()  # cap the writer connection at its current size
    store._w.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreFull) as info:
        store.submit(
            key_id="k", payload={"big": "x" * 100_000}, priority=0, base_url="h", webhook_url=None, start_deadline=None
        )
    assert info.value.status_code == 507
    job = store.get(rid)
    assert job is not None and job.state is JobState.RUNNING
    assert [s.id for s in store.list("k", limit=10)] == [rid]
    store.close()
