"""Durability: after ``kill -9`` of the server and its workers, a restart finishes every request.

The killed server's jobs hold leases; once a lease lapses (3 s here) the job runs again, once.
"""

from __future__ import annotations

import time

from queueclient import result, status, submit, wait_status
from server import start_server, stop_server

#: Short leases so a restart need not wait the default 30 s for the dead server's leases to lapse.
LEASE = {"KINEMA_LEASE_S": "3"}


def test_kill_9_then_restart_runs_everything(tmp_path, photo_uri):
    data = tmp_path / "data"
    server = start_server(data, engine="tests/engines/slow.py:render", env=LEASE)
    key = server.key
    payload = {"prompt": "x", "image_url": photo_uri}
    rids = [submit(server, payload).json()["request_id"] for _ in range(3)]
    wait_status(server, rids[0], "IN_PROGRESS")
    time.sleep(0.5)
    stop_server(server, hard=True)  # SIGKILL to the process group: server and worker

    server = start_server(data, engine="tests/engines/trivial.py:render", key=key, env=LEASE)
    try:
        for rid in rids:
            wait_status(server, rid, "COMPLETED", timeout=60)
            assert result(server, rid).status_code == 200
        logs = [e["message"] for e in status(server, rids[0]).json()["logs"]]
        assert any("running the request again" in m for m in logs)
    finally:
        stop_server(server)


def _running_again(server, rid: str, timeout: float = 30.0) -> None:
    """Wait until the new server's worker took the job again (its lease lapsed, then a fresh start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = [e["message"] for e in status(server, rid).json()["logs"]]
        again = [i for i, m in enumerate(messages) if "running the request again" in m]
        if again and any(m.startswith("hanging engine") for m in messages[again[-1] :]):
            return
        time.sleep(0.1)
    raise AssertionError(f"request {rid} was not run again within {timeout} s")


def test_interrupted_twice_gives_runner_disconnected(tmp_path, photo_uri):
    data = tmp_path / "data"
    server = start_server(data, engine="tests/engines/hanging.py:render", env=LEASE)
    key = server.key
    rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
    wait_status(server, rid, "IN_PROGRESS")
    stop_server(server, hard=True)  # interrupted while running attempt 1
    server = start_server(data, engine="tests/engines/hanging.py:render", key=key, env=LEASE)
    _running_again(server, rid)
    stop_server(server, hard=True)  # interrupted while running attempt 2
    server = start_server(data, engine="tests/engines/hanging.py:render", key=key, env=LEASE)
    try:
        done = wait_status(server, rid, "COMPLETED", timeout=15)
        assert done["error_type"] == "runner_disconnected"
        assert result(server, rid).status_code == 503
    finally:
        stop_server(server)


def test_a_live_servers_job_is_not_run_again_by_a_restarted_peer(tmp_path, photo_uri):
    """A second server on the data dir does not take over a job whose worker still renews its lease."""
    data = tmp_path / "data"
    first = start_server(data, engine="tests/engines/slow.py:render", env=LEASE)
    try:
        rid = submit(first, {"prompt": "x", "image_url": photo_uri, "duration": "10"}).json()["request_id"]
        wait_status(first, rid, "IN_PROGRESS")
        second = start_server(data, engine="tests/engines/trivial.py:render", key=first.key, env=LEASE)
        try:
            done = wait_status(second, rid, "COMPLETED", timeout=60)  # 300 frames at 0.05 s: ~15 s > 3 s leases
            assert result(second, rid).status_code == 200
            messages = [e["message"] for e in done["logs"]]
            assert not any("running the request again" in m for m in messages)
            assert sum(m.startswith("slow engine at frame 0") for m in messages) == 1
        finally:
            stop_server(second)
    finally:
        stop_server(first)


def test_a_job_running_at_a_graceful_shutdown_runs_again_after_restart(tmp_path, photo_uri):
    data = tmp_path / "data"
    server = start_server(data, engine="tests/engines/slow.py:render", env=LEASE)
    key = server.key
    rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
    wait_status(server, rid, "IN_PROGRESS")
    stop_server(server)  # SIGINT: the worker stops; the request must not end as cancelled
    server = start_server(data, engine="tests/engines/trivial.py:render", key=key, env=LEASE)
    try:
        done = wait_status(server, rid, "COMPLETED", timeout=60)
        assert result(server, rid).status_code == 200, done
        assert any("running the request again" in e["message"] for e in done["logs"])
    finally:
        stop_server(server)
