"""Durability: after ``kill -9`` of the server and its workers, a restart finishes every request."""

from __future__ import annotations

import time

from queueclient import result, status, submit, wait_status
from server import start_server, stop_server


def test_kill_9_then_restart_runs_everything(tmp_path, photo_uri):
    data = tmp_path / "data"
    server = start_server(data, engine="tests/engines/slow.py:render")
    key = server.key
    payload = {"prompt": "x", "image_url": photo_uri}
    rids = [submit(server, payload).json()["request_id"] for _ in range(3)]
    wait_status(server, rids[0], "IN_PROGRESS")
    time.sleep(0.5)
    stop_server(server, hard=True)  # SIGKILL to the process group: server and worker

    server = start_server(data, engine="tests/engines/trivial.py:render", key=key)
    try:
        for rid in rids:
            wait_status(server, rid, "COMPLETED", timeout=60)
            assert result(server, rid).status_code == 200
        logs = [e["message"] for e in status(server, rids[0]).json()["logs"]]
        assert any("running it again" in m for m in logs)
    finally:
        stop_server(server)


def test_interrupted_twice_gives_runner_disconnected(tmp_path, photo_uri):
    data = tmp_path / "data"
    server = start_server(data, engine="tests/engines/hanging.py:render")
    key = server.key
    rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
    for _ in range(2):
        wait_status(server, rid, "IN_PROGRESS")
        stop_server(server, hard=True)
        server = start_server(data, engine="tests/engines/hanging.py:render", key=key)
    try:
        done = wait_status(server, rid, "COMPLETED", timeout=10)
        assert done["error_type"] == "runner_disconnected"
        assert result(server, rid).status_code == 503
    finally:
        stop_server(server)
