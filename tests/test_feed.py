"""The change feed wakes waiters on changes made by another process within its 50 ms poll."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kinema.jobs.feed import ChangeFeed
from kinema.jobs.sqlite_store import SqliteJobStore

_WRITER = """
import sys, time
from pathlib import Path
from kinema.jobs.sqlite_store import SqliteJobStore
store = SqliteJobStore(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
store.submit(key_id="k", payload={}, priority=0, base_url="h", webhook_url=None, start_deadline=None)
print(time.monotonic(), flush=True)
"""


def test_a_commit_in_another_process_wakes_waiters(tmp_path: Path) -> None:
    path = tmp_path / "kinema.sqlite3"
    store = SqliteJobStore(path)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdin is not None and writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"

    async def main() -> tuple[float, float, int, int]:
        assert writer.stdin is not None and writer.stdout is not None
        feed = ChangeFeed(store)
        await feed.start()
        await asyncio.sleep(0.2)
        version = feed.version
        assert await feed.wait(version, timeout=0.3) == version  # nothing changed: times out
        waiter = asyncio.create_task(feed.wait(version, timeout=10))
        writer.stdin.write("go\n")
        writer.stdin.flush()
        woke = await waiter
        woke_at = time.monotonic()
        committed_at = float(await asyncio.to_thread(writer.stdout.readline))
        await asyncio.to_thread(writer.wait, 10)
        await feed.stop()
        return committed_at, woke_at, version, woke

    committed_at, woke_at, before, after = asyncio.run(main())
    store.close()
    assert after != before
    assert woke_at - committed_at < 0.25, woke_at - committed_at  # 50 ms poll, on a loaded 2-core machine


def test_notify_wakes_at_once_and_the_interval_is_bounded(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "kinema.sqlite3")
    with pytest.raises(ValueError):
        ChangeFeed(store, interval=0.5)

    async def main() -> float:
        feed = ChangeFeed(store, interval=0.1)
        await feed.start()
        version = feed.version
        waiter = asyncio.create_task(feed.wait(version, timeout=5))
        await asyncio.sleep(0.01)
        t0 = time.monotonic()
        await asyncio.to_thread(feed.notify)  # from another thread, as the store gate does
        await waiter
        elapsed = time.monotonic() - t0
        await feed.stop()
        return elapsed

    assert asyncio.run(main()) < 0.05
    store.close()
