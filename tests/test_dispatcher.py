"""The dispatcher with real worker processes, a real SQLite store and its change feed (no HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from server import ROOT

from kinema.jobs.dispatcher import Dispatcher
from kinema.jobs.feed import ChangeFeed
from kinema.jobs.sqlite_store import SqliteJobStore
from kinema.jobs.states import JobState, WorkerState
from kinema.media.encode import read_frames
from kinema.media.storage import open_storage
from kinema.settings import Settings

ENGINES = ROOT / "tests" / "engines"


@contextlib.asynccontextmanager
async def running(tmp_path: Path, engine: str, **kw: Any) -> AsyncIterator[tuple[Settings, SqliteJobStore, Dispatcher]]:
    s = Settings(data_dir=tmp_path / "data", engine=f"{ENGINES / engine}:load", output_short_side=90).replace(**kw)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteJobStore(s.db_path)
    feed = ChangeFeed(store)
    await feed.start()
    d = Dispatcher(s, store, feed, open_storage(s))
    await d.start()
    try:
        yield s, store, d
    finally:
        await d.stop()
        await feed.stop()
        store.close()


async def until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")


def submit(store: SqliteJobStore, photo_uri: str, priority: int = 0, prompt: str = "p") -> str:
    return store.submit(
        key_id="k",
        payload={"prompt": prompt, "image_url": photo_uri},
        priority=priority,
        base_url="http://127.0.0.1:9",
        webhook_url=None,
        start_deadline=None,
    ).id


def state(store: SqliteJobStore, rid: str) -> JobState:
    job = store.get(rid)
    assert job is not None
    return job.state


def test_jobs_run_by_priority_on_one_engine_load(tmp_path: Path, photo_uri: str, monkeypatch) -> None:
    loads = tmp_path / "loads.txt"
    monkeypatch.setenv("KINEMA_TEST_LOADS", str(loads))

    async def main() -> None:
        async with running(tmp_path, "load_counting.py") as (s, store, d):
            low = submit(store, photo_uri, priority=1)
            normal = [submit(store, photo_uri) for _ in range(3)]
            await until(lambda: all(state(store, r).terminal for r in [low, *normal]))
            jobs = [store.get(r) for r in [*normal, low]]
            assert all(j is not None and j.state is JobState.SUCCEEDED for j in jobs)
            started = [j.started_at for j in jobs if j is not None]
            assert max(started[:3]) <= started[3]  # low priority ran last although submitted first
            out = jobs[0].outcome if jobs[0] is not None else None
            assert out is not None and out.output is not None and out.billed_seconds == 5.0
            path = s.files_dir / out.output["url"].split("/files/")[1]
            assert read_frames(path).shape == (150, 90, 90, 3)
            messages = [e.message for e in store.logs(normal[0])]
            assert "input image 512x512; rendering 150 frames" in messages
            # Every stage's progress reaches the job's log, in order.
            stages = [
                "load: engine ready on cpu",
                "decode 1/1",
                "render frame 1/150",
                "encode frame 1/150",
                "render frame 150/150",
                "encode frame 150/150",
            ]
            at = [next(i for i, m in enumerate(messages) if m.startswith(st)) for st in stages]
            assert at == sorted(at), messages
            assert d.workers[0].state is WorkerState.READY

    asyncio.run(main())
    assert len(loads.read_text().splitlines()) == 1  # four jobs, one engine load


def test_a_16_fps_engine_is_converted_to_the_contract_and_says_so(tmp_path: Path, photo_uri: str) -> None:
    async def main() -> None:
        async with running(tmp_path, "sixteen_fps.py") as (s, store, _d):
            rid = store.submit(
                key_id="k",
                payload={"prompt": "p", "image_url": photo_uri, "duration": "10"},
                priority=0,
                base_url="http://h",
                webhook_url=None,
                start_deadline=None,
            ).id
            await until(lambda: state(store, rid).terminal)
            job = store.get(rid)
            assert job is not None and job.state is JobState.SUCCEEDED and job.outcome is not None
            assert job.outcome.output is not None and job.outcome.billed_seconds == 10.0
            path = s.files_dir / job.outcome.output["url"].split("/files/")[1]
            assert read_frames(path).shape == (300, 90, 90, 3)
            messages = [e.message for e in store.logs(rid)]
            assert "converting 16 fps to 30 fps by optical-flow interpolation" in messages
            assert "render frame 161/161" in messages and "interpolate 300/300" in messages

    asyncio.run(main())


def test_a_cancel_through_another_store_connection_reaches_the_worker(tmp_path: Path, photo_uri: str) -> None:
    async def main() -> None:
        async with running(tmp_path, "slow.py", cancel_grace_s=60.0) as (s, store, d):
            rid = submit(store, photo_uri)
            await until(lambda: state(store, rid) is JobState.RUNNING)
            pid = d.workers[0].proc.pid
            await asyncio.sleep(0.5)
            other = SqliteJobStore(s.db_path)  # as a second server on the same data dir would
            t0 = time.monotonic()
            other.request_cancel(rid)
            other.close()
            await until(lambda: state(store, rid) is JobState.CANCELLED, timeout=10)
            assert time.monotonic() - t0 < 5  # the typed Cancel, not the 60 s grace-period kill
            job = store.get(rid)
            assert job is not None and job.outcome is not None and job.outcome.status_code == 400
            assert d.workers[0].proc.pid == pid  # the same warm worker
            await until(lambda: d.workers[0].state is WorkerState.READY)

    asyncio.run(main())


def test_an_engine_ignoring_cancel_is_killed_its_partial_file_removed_and_respawned(
    tmp_path: Path, photo_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kinema.dispatcher")

    async def main() -> None:
        async with running(tmp_path, "stubborn.py", cancel_grace_s=1.0) as (s, store, d):
            rid = submit(store, photo_uri)
            await until(lambda: any(e.message.startswith("stubborn engine") for e in store.logs(rid)))
            old = d.workers[0]
            partial = s.work_dir / old.id / f"{rid}.mp4"
            assert partial.stat().st_size > 0  # 60 frames encoded
            store.request_cancel(rid)
            await until(lambda: state(store, rid) is JobState.CANCELLED, timeout=15)
            assert any("ignored the cancel" in e.message for e in store.logs(rid))
            assert not partial.parent.exists()
            await until(lambda: d.workers[0] is not old and d.workers[0].state is WorkerState.READY)
            # The fresh worker takes the next job.
            rid2 = submit(store, photo_uri)
            await until(lambda: state(store, rid2) is JobState.RUNNING)
            store.request_cancel(rid2)
            await until(lambda: state(store, rid2) is JobState.CANCELLED, timeout=15)

    asyncio.run(main())
    assert any("engine reload cost" in r.getMessage() for r in caplog.records)


def test_a_lapsed_lease_is_run_again_by_a_live_worker(tmp_path: Path, photo_uri: str) -> None:
    async def main() -> None:
        async with running(tmp_path, "trivial.py") as (_s, store, d):
            await until(lambda: d.workers[0].state is WorkerState.READY)
            await d.stop()  # no claims from here: a "ghost" worker elsewhere takes the job and vanishes
            rid = submit(store, photo_uri)
            ghost = store.claim("ghost-worker", 0.3)
            assert ghost is not None and ghost.id == rid
        async with running(tmp_path, "trivial.py") as (_s, store, d):
            await until(lambda: state(store, rid) is JobState.SUCCEEDED)
            job = store.get(rid)
            assert job is not None and job.attempts == 2 and job.worker_id != "ghost-worker"
            assert any("running the request again" in e.message for e in store.logs(rid))

    asyncio.run(main())


def test_a_worker_crash_fails_the_job_and_a_fresh_worker_takes_over(tmp_path: Path, photo_uri: str) -> None:
    async def main() -> None:
        async with running(tmp_path, "crashing.py") as (_s, store, _d):
            for _ in range(2):
                rid = submit(store, photo_uri)
                await until(lambda rid=rid: state(store, rid).terminal)
                job = store.get(rid)
                assert job is not None and job.outcome is not None
                assert (job.outcome.status_code, job.outcome.error_type) == (503, "runner_disconnected")
                assert job.attempts == 1  # a crash is not re-run

    asyncio.run(main())


def test_a_load_failure_makes_the_worker_defunct_and_no_job_is_claimed(
    tmp_path: Path, photo_uri: str, monkeypatch
) -> None:
    monkeypatch.setenv("KINEMA_TEST_LOAD_FAIL", "CUDA out of memory on cuda:0")

    async def main() -> None:
        async with running(tmp_path, "load_counting.py") as (_s, store, d):
            await until(lambda: d.workers[0].state is WorkerState.DEFUNCT)
            rid = submit(store, photo_uri)
            await asyncio.sleep(1.0)
            assert state(store, rid) is JobState.QUEUED
            health = d.health()
            assert health["can_take_work"] is False
            assert "CUDA out of memory on cuda:0" in health["reason"]
            assert health["workers"][0]["state"] == "DEFUNCT"

    asyncio.run(main())


def test_uploaded_files_past_retention_are_removed(tmp_path: Path, photo_png: bytes) -> None:
    async def main() -> None:
        async with running(tmp_path, "trivial.py", retention_s=1.0) as (s, _store, _d):
            storage = open_storage(s)
            old = storage.save_bytes(photo_png, file_name="old.png")
            assert storage.get(old.id) is not None
            await until(lambda: storage.get(old.id) is None, timeout=15)
            assert not (s.files_dir / old.id).exists()

    asyncio.run(main())
