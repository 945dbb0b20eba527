"""Two ``kinema serve`` on one data dir cooperate: one truth in the store, every job runs once.

Each run of the fixture engine appends a line to a marker file, so the test counts real runs,
not what the servers say about them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from queueclient import cancel, result, status, submit, wait_status
from server import ROOT, Server, start_server, stop_server

ENGINE = "tests/engines/run_marking.py:load"


def _runs(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(line.split()[0] for line in path.read_text().splitlines() if line.strip())


def _parent(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no parent for {pid}")


def _pair(tmp_path: Path, env: dict[str, str]) -> tuple[Server, Server]:
    data_dir = tmp_path / "data"
    a = start_server(data_dir, engine=ENGINE, env=env)
    try:
        b = start_server(data_dir, engine=ENGINE, env=env, key=a.key)
    except BaseException:
        stop_server(a)
        raise
    return a, b


def test_two_servers_share_the_queue_and_run_each_job_once(tmp_path: Path, photo_uri: str) -> None:
    runs = tmp_path / "runs.txt"
    env = {"KINEMA_TEST_RUNS": str(runs), "KINEMA_TEST_FRAME_S": "0.01"}
    a, b = _pair(tmp_path, env)
    try:
        ids = {}
        for i in range(12):
            server = (a, b)[i % 2]
            r = submit(server, {"prompt": f"job-{i}", "image_url": photo_uri})
            assert r.status_code == 200, r.text
            ids[f"job-{i}"] = r.json()["request_id"]
        for i, (_prompt, rid) in enumerate(ids.items()):
            other = (b, a)[i % 2]  # read each job through the server it was NOT submitted to
            wait_status(other, rid, "COMPLETED", timeout=120)
            res = result(other, rid)
            assert res.status_code == 200, res.text
            assert res.json()["video"]["url"].endswith(".mp4")
        counts = _runs(runs)
        assert counts == Counter({prompt: 1 for prompt in ids}), counts
        pids = {line.split()[1] for line in runs.read_text().splitlines()}
        assert len(pids) >= 1
        # Both servers list the same requests from the one store.
        listed_a = httpx.get(f"{a.url}/requests", headers=a.headers, params={"limit": 50}).json()["requests"]
        listed_b = httpx.get(f"{b.url}/requests", headers=b.headers, params={"limit": 50}).json()["requests"]
        assert [r["request_id"] for r in listed_a] == [r["request_id"] for r in listed_b]
        assert {r["request_id"] for r in listed_a} == set(ids.values())
    finally:
        stop_server(a)
        stop_server(b)


def test_a_cancel_sent_to_one_server_stops_the_job_the_other_runs(tmp_path: Path, photo_uri: str) -> None:
    runs = tmp_path / "runs.txt"
    env = {"KINEMA_TEST_RUNS": str(runs), "KINEMA_TEST_FRAME_S": "0.2"}  # 150 frames: 30 s unless cancelled
    a, b = _pair(tmp_path, env)
    try:
        rid = submit(a, {"prompt": "long", "image_url": photo_uri}).json()["request_id"]
        wait_status(b, rid, "IN_PROGRESS", timeout=60)
        while not _runs(runs)["long"]:
            time.sleep(0.05)
        worker_pid = int(runs.read_text().split()[1])
        runner = next(s for s in (a, b) if _parent(worker_pid) == s.proc.pid)
        other = b if runner is a else a
        t0 = time.monotonic()
        assert cancel(other, rid).status_code == 202  # sent to the server that does NOT run the job
        body = wait_status(runner, rid, "COMPLETED", timeout=30)
        assert time.monotonic() - t0 < 15  # well before the 30 s the run would take
        assert body["error_type"] == "request_cancelled"
        assert result(b, rid).status_code == 400
        assert cancel(b, rid).status_code == 400  # ALREADY_COMPLETED, through either server
        time.sleep(1.0)
        assert _runs(runs)["long"] == 1  # stopped, and never started again
        assert status(b, rid).json()["status"] == "COMPLETED"
    finally:
        stop_server(a)
        stop_server(b)


def test_a_second_server_on_a_busy_port_fails_before_touching_the_data_dir(tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    first = start_server(tmp_path / "data", engine=ENGINE, env={"KINEMA_TEST_RUNS": str(runs)})
    try:
        port = first.url.rsplit(":", 1)[1]
        fresh = tmp_path / "never-created"
        proc = subprocess.run(
            [sys.executable, "-m", "kinema", "serve", "--port", port, "--data-dir", str(fresh)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(ROOT),
        )
        assert proc.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr + proc.stdout
        assert not fresh.exists()  # no database, no recovery pass, nothing
        assert httpx.get(first.url + "/health").status_code == 200  # the first one is unharmed
    finally:
        stop_server(first)


def test_the_jobs_of_a_killed_server_are_finished_by_the_other_once_their_lease_lapses(
    tmp_path: Path, photo_uri: str
) -> None:
    runs = tmp_path / "runs.txt"
    env = {"KINEMA_TEST_RUNS": str(runs), "KINEMA_TEST_FRAME_S": "0.08", "KINEMA_LEASE_S": "2"}
    data_dir = tmp_path / "data"
    a = start_server(data_dir, engine=ENGINE, env=env)
    b = None
    try:
        rid = submit(a, {"prompt": "orphan", "image_url": photo_uri}).json()["request_id"]
        wait_status(a, rid, "IN_PROGRESS", timeout=60)
        b = start_server(data_dir, engine=ENGINE, env=env, key=a.key)
        time.sleep(3.0)  # longer than the lease: a live server's heartbeats keep its job
        assert _runs(runs)["orphan"] == 1
        assert status(b, rid).json()["status"] == "IN_PROGRESS"  # 150 frames × 0.08 s: still running on a
        stop_server(a, hard=True)  # kill -9 the server and its workers mid-job
        body = wait_status(b, rid, "COMPLETED", timeout=60)
        assert "error" not in body, body
        assert result(b, rid).status_code == 200
        assert _runs(runs)["orphan"] == 2  # re-run exactly once, by the survivor
        messages = [entry["message"] for entry in status(b, rid).json()["logs"]]
        assert any("lease lapsed" in m for m in messages), messages
    finally:
        stop_server(a, hard=True)
        if b is not None:
            stop_server(b)
