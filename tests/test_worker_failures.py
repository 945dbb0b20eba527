"""Engine failures in the worker process never take the server down."""

from __future__ import annotations

import httpx
from queueclient import cancel, result, submit, wait_status
from server import running_server


def test_worker_crash_completes_with_runner_disconnected(tmp_path, photo_uri):
    with running_server(tmp_path, engine="tests/engines/crashing.py:render") as server:
        for _ in range(2):  # the second proves a fresh worker took over
            rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
            done = wait_status(server, rid, "COMPLETED", timeout=60)
            assert done["error_type"] == "runner_disconnected"
            res = result(server, rid)
            assert res.status_code == 503
            assert res.headers["x-fal-error-type"] == "runner_disconnected"
        assert httpx.get(server.url + "/health").json()["status"] == "ok"


def test_engine_exception_is_an_engine_error(tmp_path, photo_uri):
    with running_server(tmp_path, engine="tests/engines/failing.py:render") as server:
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        done = wait_status(server, rid, "COMPLETED")
        assert done["error_type"] == "engine_error"
        assert "fixture engine failure" in done["error"]
        assert any(e["level"] == "ERROR" for e in done["logs"])
        assert result(server, rid).status_code == 500


def test_hanging_engine_is_killed_after_grace(tmp_path, photo_uri):
    with running_server(
        tmp_path, engine="tests/engines/hanging.py:render", env={"KINEMA_CANCEL_GRACE_S": "1"}
    ) as server:
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, rid, "IN_PROGRESS")
        assert cancel(server, rid).status_code == 202
        done = wait_status(server, rid, "COMPLETED", timeout=15)
        assert done["error_type"] == "request_cancelled"
        # The replacement worker serves the next request (it hangs too, so cancel it again).
        rid2 = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, rid2, "IN_PROGRESS", timeout=60)
        cancel(server, rid2)
        wait_status(server, rid2, "COMPLETED", timeout=15)
