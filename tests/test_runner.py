"""A worker process handle: guarded states, typed messages both ways, shutdown and orphan exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from server import ROOT

from kinema.jobs.events import (
    JobDone,
    JobLog,
    JobProgress,
    RunJob,
    WorkerEvent,
    WorkerReady,
)
from kinema.jobs.runner import WorkerProcess
from kinema.jobs.states import IllegalTransition, WorkerState
from kinema.settings import Settings


def settings(tmp_path: Path, engine: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", engine=f"{ROOT / 'tests/engines' / engine}:load", output_short_side=90)


def test_messages_both_ways_and_a_clean_stop(tmp_path: Path, photo_uri: str) -> None:
    events: list[WorkerEvent] = []
    exited: list[WorkerProcess] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        w = WorkerProcess(0, settings(tmp_path, "slow.py"), loop, lambda _w, e: events.append(e), exited.append)
        assert w.state is WorkerState.STARTING and w.device == "cpu"
        while not any(isinstance(e, WorkerReady) for e in events):
            await asyncio.sleep(0.05)
        w.move(WorkerState.READY)
        with pytest.raises(IllegalTransition):
            w.move(WorkerState.STARTING)
        w.run(RunJob("job-1", {"prompt": "x", "image_url": photo_uri}, "http://h"))
        assert w.state is WorkerState.BUSY
        while not any(isinstance(e, JobProgress) and e.progress.stage == "encode" for e in events):
            await asyncio.sleep(0.05)
        w.cancel()  # a typed Cancel: the job ends as a cancelled outcome, the process lives on
        while not any(isinstance(e, JobDone) for e in events):
            await asyncio.sleep(0.05)
        done = next(e for e in events if isinstance(e, JobDone))
        assert (done.request_id, done.status_code, done.error_type) == ("job-1", 400, "request_cancelled")
        assert any(isinstance(e, JobLog) and e.message == "cancelled" for e in events)
        w.finished()
        assert w.state is WorkerState.READY and w.proc.is_alive()
        await asyncio.to_thread(w.stop)
        assert not w.proc.is_alive() and w.proc.exitcode == 0
        await asyncio.sleep(0.2)

    asyncio.run(main())
    assert len(exited) == 1


_PARENT = """
import asyncio, sys
from pathlib import Path
from kinema.jobs.events import WorkerReady
from kinema.jobs.runner import WorkerProcess
from kinema.settings import Settings

async def main():
    ready = asyncio.Event()
    s = Settings(data_dir=Path(sys.argv[1]), engine=sys.argv[2])
    w = WorkerProcess(0, s, asyncio.get_running_loop(),
                      lambda _w, e: ready.set() if isinstance(e, WorkerReady) else None, lambda _w: None)
    await ready.wait()
    print(w.proc.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_worker_whose_server_died_exits(tmp_path: Path) -> None:
    engine = f"{ROOT / 'tests/engines/trivial.py'}:load"
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path / "data"), engine],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)  # the server only, not its process group
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
