"""The JobStore contract: every backend must pass this suite unchanged.

Backends are the parameters of the ``store_factory`` fixture: SQLite, and PostgreSQL on a real
server started by the suite (``tests/pg.py``; each test gets a fresh database). A factory opens independent store
instances on one database, as separate server processes would; ``open_store(spec)`` does the same inside a child
process.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kinema.jobs.sqlite_store import SqliteJobStore
from kinema.jobs.states import JobState
from kinema.jobs.store import MAX_ATTEMPTS, JobStore, Outcome, Progress, cancelled_outcome

BACKENDS = ["sqlite", "postgres"]


@dataclass(frozen=True)
class StoreSpec:
    backend: str
    location: str


def open_store(spec: StoreSpec) -> JobStore:
    if spec.backend == "sqlite":
        return SqliteJobStore(Path(spec.location), price_per_second=0.1)
    if spec.backend == "postgres":
        from kinema.jobs.pg_store import PgJobStore  # psycopg: only where PostgreSQL runs

        return PgJobStore(spec.location, price_per_second=0.1, pool_size=4)
    raise ValueError(spec.backend)


@dataclass
class StoreFactory:
    spec: StoreSpec
    opened: list[JobStore]

    def __call__(self) -> JobStore:
        store = open_store(self.spec)
        self.opened.append(store)
        return store


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    if request.param == "postgres":
        location = str(request.getfixturevalue("pg_url"))
    else:
        location = str(tmp_path / "jobs.sqlite3")
    factory = StoreFactory(StoreSpec(request.param, location), [])
    yield factory
    for store in factory.opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> JobStore:
    return store_factory()


def submit(store: JobStore, key: str = "k1", *, priority: int = 0, **kw: Any) -> str:
    args: dict[str, Any] = {
        "payload": {"prompt": "p", "n": 1},
        "base_url": "http://h",
        "webhook_url": None,
        "start_deadline": None,
        **kw,
    }
    return store.submit(key_id=key, priority=priority, **args).id


def ok(seconds: float = 5.0) -> Outcome:
    file = {"url": "http://h/files/x.mp4", "content_type": "video/mp4"}
    return Outcome(200, {"video": file}, None, file, 1.5, seconds)


# Submitting and claiming ----------------------------------------------------------------------------------------
def test_submit_assigns_increasing_seq_and_queues(store: JobStore) -> None:
    jobs = [
        store.submit(
            key_id="k1", payload={"i": i}, priority=0, base_url="http://h", webhook_url=None, start_deadline=None
        )
        for i in range(3)
    ]
    assert [j.state for j in jobs] == [JobState.QUEUED] * 3
    assert jobs[0].seq < jobs[1].seq < jobs[2].seq
    assert len({j.id for j in jobs}) == 3
    got = store.get(jobs[1].id)
    assert got is not None and got.payload is None and got.fal_status == "IN_QUEUE"
    full = store.get(jobs[1].id, with_payload=True)
    assert full is not None and full.payload == {"i": 1}
    assert store.get("missing") is None


def test_claim_order_is_priority_then_seq(store: JobStore) -> None:
    low = submit(store, priority=1)
    a = submit(store)
    b = submit(store)
    assert [store.queue_position(x) for x in (a, b, low)] == [0, 1, 2]
    first = store.claim("w1", 30)
    assert first is not None and first.id == a and first.payload == {"prompt": "p", "n": 1}
    assert first.state is JobState.RUNNING and first.attempts == 1 and first.worker_id == "w1"
    assert store.queue_position(b) == 0 and store.queue_position(a) == 0
    second, third = store.claim("w1", 30), store.claim("w2", 30)
    assert second is not None and second.id == b
    assert third is not None and third.id == low
    assert store.claim("w1", 30) is None


def test_heartbeat_extends_only_the_holders_lease_and_reports_cancel(store: JobStore) -> None:
    rid = submit(store)
    job = store.claim("w1", 1.0)
    assert job is not None and job.lease_until is not None
    assert store.heartbeat(rid, "w2", 30) is None
    assert store.heartbeat(rid, "w1", 30) is JobState.RUNNING
    renewed = store.get(rid)
    assert renewed is not None and renewed.lease_until is not None and renewed.lease_until > job.lease_until + 20
    assert store.expire_leases(time.time() + 5) == []  # the renewed lease still holds
    store.request_cancel(rid)
    assert store.heartbeat(rid, "w1", 30) is JobState.CANCELLING


def test_lapsed_lease_requeues_once_then_runner_disconnected(store: JobStore) -> None:
    rid = submit(store)
    assert store.claim("w1", 0.5) is not None
    assert store.expire_leases(time.time()) == []
    (requeued,) = store.expire_leases(time.time() + 1)
    assert requeued.state is JobState.QUEUED and requeued.worker_id is None and requeued.attempts == 1
    assert store.heartbeat(rid, "w1", 30) is None  # the old holder lost it
    again = store.claim("w2", 0.5)
    assert again is not None and again.id == rid and again.attempts == MAX_ATTEMPTS
    (failed,) = store.expire_leases(time.time() + 1)
    assert failed.state is JobState.FAILED and failed.outcome is not None
    assert failed.outcome.status_code == 503 and failed.outcome.error_type == "runner_disconnected"
    # The first holder finishing late changes nothing.
    assert store.complete(rid, ok(), worker_id="w1").outcome == failed.outcome
    messages = [e.message for e in store.logs(rid)]
    assert any("lease lapsed" in m for m in messages) and any("giving up" in m for m in messages)


def test_complete_is_once_and_only_by_the_holder(store: JobStore) -> None:
    rid = submit(store)
    assert store.claim("w1", 30) is not None
    assert store.complete(rid, ok(), worker_id="other").state is JobState.RUNNING
    done = store.complete(rid, ok(5.0), worker_id="w1")
    assert done.state is JobState.SUCCEEDED and done.fal_status == "COMPLETED" and done.completed_at is not None
    assert done.outcome is not None and done.outcome.output == ok().output and done.outcome.inference_time == 1.5
    failure = Outcome(500, {"detail": "boom", "error_type": "engine_error"}, "engine_error")
    again = store.complete(rid, failure, worker_id=None)
    assert again.state is JobState.SUCCEEDED and again.outcome == done.outcome
    assert store.usage("k1") == {"requests": 1, "billed_seconds": 5.0, "cost_usd": 0.5}
    with pytest.raises(LookupError):
        store.complete("missing", ok(), worker_id=None)


def test_failure_outcome_is_failed_and_not_billed(store: JobStore) -> None:
    rid = submit(store)
    store.claim("w1", 30)
    failure = Outcome(500, {"detail": "boom", "error_type": "engine_error"}, "engine_error")
    done = store.complete(rid, failure, worker_id="w1")
    assert done.state is JobState.FAILED and done.outcome is not None and done.outcome.body["detail"] == "boom"
    assert done.outcome.inference_time is not None and done.outcome.inference_time >= 0
    assert store.usage("k1")["requests"] == 0


def test_cancel_queued_running_and_terminal(store: JobStore) -> None:
    queued, running = submit(store, priority=1), submit(store)
    assert store.claim("w1", 30) is not None
    cancelled = store.request_cancel(queued)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert cancelled.outcome is not None and cancelled.outcome.status_code == 400
    assert cancelled.outcome.error_type == "request_cancelled"
    cancelling = store.request_cancel(running)
    assert cancelling is not None and cancelling.state is JobState.CANCELLING and cancelling.fal_status == "IN_PROGRESS"
    assert store.request_cancel(running) == cancelling  # asking twice changes nothing
    done = store.complete(running, cancelled_outcome(), worker_id="w1")
    assert done.state is JobState.CANCELLED
    assert store.request_cancel(running) == done
    assert store.request_cancel("missing") is None
    assert store.claim("w1", 30) is None


def test_a_job_that_finishes_while_cancelling_keeps_its_result(store: JobStore) -> None:
    rid = submit(store)
    store.claim("w1", 30)
    store.request_cancel(rid)
    assert store.complete(rid, ok(), worker_id="w1").state is JobState.SUCCEEDED


def test_lapsed_lease_while_cancelling_ends_cancelled(store: JobStore) -> None:
    rid = submit(store)
    store.claim("w1", 0.1)
    store.request_cancel(rid)
    (job,) = store.expire_leases(time.time() + 1)
    assert job.id == rid and job.state is JobState.CANCELLED


def test_start_deadline(store: JobStore) -> None:
    late = submit(store, start_deadline=time.time() - 1)
    fine = submit(store, start_deadline=time.time() + 60)
    claimed = store.claim("w1", 30)
    assert claimed is not None and claimed.id == fine  # a job past its deadline is never started
    (expired,) = store.expire_start_deadlines(time.time())
    assert expired.id == late and expired.state is JobState.FAILED
    assert expired.outcome is not None and expired.outcome.status_code == 504
    assert expired.outcome.error_type == "request_timeout"
    assert store.expire_start_deadlines(time.time()) == []


# Reads ------------------------------------------------------------------------------------------------------------
def test_logs_and_progress(store: JobStore) -> None:
    rid = submit(store)
    store.claim("w1", 30)
    for i in range(5):
        store.append_log(rid, f"line {i}", "INFO", 1000.0 + i)
    logs = store.logs(rid)
    assert [e.index for e in logs] == list(range(5)) and logs[2].message == "line 2" and logs[2].ts == 1002.0
    assert [e.message for e in store.logs(rid, 3)] == ["line 3", "line 4"]
    store.set_progress(rid, Progress(step=7, total=30, stage="step"))
    job = store.get(rid)
    assert job is not None and job.progress == Progress(step=7, total=30, stage="step")
    assert store.logs("missing") == []


def test_list_is_paginated_newest_first_per_key_without_inputs(store: JobStore) -> None:
    mine = [submit(store, "k1") for _ in range(5)]
    submit(store, "k2")
    store.claim("w1", 30)
    store.complete(mine[0], ok(), worker_id="w1")
    page1 = store.list("k1", limit=2)
    assert [s.id for s in page1] == mine[:-3:-1]
    page2 = store.list("k1", limit=2, before=page1[-1].id)
    page3 = store.list("k1", limit=2, before=page2[-1].id)
    assert [s.id for s in page1 + page2 + page3] == mine[::-1]
    assert page3[-1].state is JobState.SUCCEEDED and page3[-1].status_code == 200
    assert page3[-1].body == {"video": ok().output} and page3[-1].fal_status == "COMPLETED"
    assert page1[0].input == {"prompt": "p", "n": 1} and page1[0].base_url == "http://h"
    assert not hasattr(page1[0], "payload")
    assert [s.id for s in store.list("k2", limit=10)] != [] and store.list("k3", limit=10) == []


def test_list_leaves_data_uris_out(store: JobStore) -> None:
    big = "data:image/png;base64," + "A" * 1_000_000
    submit(store, payload={"prompt": "keep me", "image_url": big, "dynamic_masks": [{"mask_url": big, "t": [1]}]})
    (row,) = store.list("k1", limit=5)
    assert row.input == {"prompt": "keep me", "image_url": None, "dynamic_masks": [{"mask_url": None, "t": [1]}]}


def test_usage_survives_purge_and_purge_keeps_live_jobs(store: JobStore) -> None:
    old, live = submit(store), submit(store)
    store.claim("w1", 30)
    store.complete(old, ok(4.0), worker_id="w1")
    assert store.purge(time.time() - 60) == []
    (purged,) = store.purge(time.time() + 1)
    assert purged.id == old and purged.outcome is not None and purged.outcome.output == ok().output
    assert store.get(old) is None and store.logs(old) == [] and store.get(live) is not None
    assert store.usage("k1")["billed_seconds"] == 4.0


def test_running_on(store: JobStore) -> None:
    a, b = submit(store), submit(store)
    store.claim("w1", 30)
    store.claim("w2", 30)
    assert [j.id for j in store.running_on(["w1"])] == [a]
    assert [j.id for j in store.running_on(["w1", "w2"])] == [a, b]
    assert store.running_on([]) == []


def test_change_counter_sees_writes_of_other_instances(store_factory: StoreFactory) -> None:
    watcher, writer = store_factory(), store_factory()
    before = watcher.change_counter()
    assert watcher.change_counter() == before  # no change, no movement
    submit(writer)
    after = watcher.change_counter()
    assert after != before
    submit(watcher)  # its own writes count too
    assert watcher.change_counter() != after


def test_every_instance_sees_one_truth(store_factory: StoreFactory) -> None:
    a, b = store_factory(), store_factory()
    rid = submit(a)
    assert b.request_cancel(rid) is not None
    job = a.get(rid)
    assert job is not None and job.state is JobState.CANCELLED


# Concurrency ------------------------------------------------------------------------------------------------------
def _claim_all(store: JobStore, worker: str, out: list[str]) -> None:
    while (job := store.claim(worker, 30)) is not None:
        out.append(job.id)
        store.complete(job.id, ok(), worker_id=worker)


def test_concurrent_claims_from_threads_take_each_job_once(store_factory: StoreFactory) -> None:
    ids = {submit(store_factory()) for _ in range(60)}
    stores = [store_factory() for _ in range(4)]
    claimed: list[list[str]] = [[] for _ in stores]
    threads = [threading.Thread(target=_claim_all, args=(s, f"w{i}", claimed[i])) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    counts = Counter(rid for part in claimed for rid in part)
    assert set(counts) == ids and max(counts.values()) == 1


def _child(spec: StoreSpec, worker: str, queue: Any) -> None:
    store = open_store(spec)
    out: list[str] = []
    _claim_all(store, worker, out)
    store.close()
    queue.put(out)


def test_concurrent_claims_from_processes_take_each_job_once(store_factory: StoreFactory) -> None:
    ids = {submit(store_factory()) for _ in range(60)}
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(store_factory.spec, f"p{i}", queue)) for i in range(3)]
    for p in procs:
        p.start()
    parts = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    counts = Counter(rid for part in parts for rid in part)
    assert set(counts) == ids and max(counts.values()) == 1
    assert sum(1 for part in parts if part) >= 1
