"""Cancellation, queue order, priorities and start timeouts (slow fixture engine: 0.05 s per frame)."""

from __future__ import annotations

import time

import pytest
from queueclient import cancel, result, status, submit, wait_status
from server import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("cancel"), engine="tests/engines/slow.py:render") as s:
        yield s


def test_cancel_running_stops_within_a_second(server, photo_uri):
    rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
    wait_status(server, rid, "IN_PROGRESS")
    time.sleep(0.3)
    t0 = time.monotonic()
    r = cancel(server, rid)
    assert r.status_code == 202 and r.json() == {"status": "CANCELLATION_REQUESTED"}
    done = wait_status(server, rid, "COMPLETED", timeout=10)
    assert time.monotonic() - t0 < 1.0
    assert done["error_type"] == "request_cancelled"
    res = result(server, rid)
    assert res.status_code == 400 and res.json()["error_type"] == "request_cancelled"
    assert res.headers["x-fal-error-type"] == "request_cancelled"
    again = cancel(server, rid)
    assert again.status_code == 400 and again.json() == {"status": "ALREADY_COMPLETED"}


def test_cancel_queued_is_removed_at_once_and_positions_move(server, photo_uri):
    payload = {"prompt": "x", "image_url": photo_uri}
    first = submit(server, payload).json()["request_id"]
    second = submit(server, payload).json()
    third = submit(server, payload).json()
    wait_status(server, first, "IN_PROGRESS")
    s3 = status(server, third["request_id"]).json()
    assert s3["status"] == "IN_QUEUE" and s3["queue_position"] == 1
    assert status(server, second["request_id"]).json()["queue_position"] == 0
    r = cancel(server, second["request_id"])
    assert r.status_code == 202
    st = status(server, second["request_id"])
    assert st.status_code == 200 and st.json()["status"] == "COMPLETED"
    assert st.json()["error_type"] == "request_cancelled"
    assert status(server, third["request_id"]).json()["queue_position"] == 0
    for rid in (first, third["request_id"]):
        cancel(server, rid)
        wait_status(server, rid, "COMPLETED", timeout=10)


def test_low_priority_waits_behind_normal(server, photo_uri):
    payload = {"prompt": "x", "image_url": photo_uri}
    running = submit(server, payload).json()["request_id"]
    wait_status(server, running, "IN_PROGRESS")
    low = submit(server, payload, headers={"X-Fal-Queue-Priority": "low"}).json()["request_id"]
    normal = submit(server, payload, headers={"X-Fal-Queue-Priority": "normal"}).json()["request_id"]
    assert status(server, normal).json()["queue_position"] == 0
    assert status(server, low).json()["queue_position"] == 1
    for rid in (running, low, normal):
        cancel(server, rid)
        wait_status(server, rid, "COMPLETED", timeout=10)


def test_request_timeout_before_start_gives_504(server, photo_uri):
    payload = {"prompt": "x", "image_url": photo_uri}
    running = submit(server, payload).json()["request_id"]
    wait_status(server, running, "IN_PROGRESS")
    rid = submit(server, payload, headers={"X-Fal-Request-Timeout": "0.5"}).json()["request_id"]
    done = wait_status(server, rid, "COMPLETED", timeout=5)
    assert done["error_type"] == "request_timeout"
    res = result(server, rid)
    assert res.status_code == 504
    assert res.headers["x-fal-request-timeout-type"] == "user"
    assert res.headers["x-fal-error-type"] == "request_timeout"
    cancel(server, running)
    wait_status(server, running, "COMPLETED", timeout=10)
    bad = submit(server, payload, headers={"X-Fal-Request-Timeout": "soon"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["header", "x-fal-request-timeout"]
