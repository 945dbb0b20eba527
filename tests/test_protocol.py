"""fal-protocol.md and kling-semantics.md, statement by statement, against a live server on loopback.

Complements test_queue/test_cancel/test_stream/test_run (which these tests do not repeat): status codes and
fields of waiting requests, 401/404/405 shapes on every route form, cancel and stream under the full-path and
trailing-slash forms, the SSE ping clock, X-Fal-Request-Timeout semantics, webhook bodies of failed requests,
and the Kling input limits at and just past their edges.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import data_uri, png_bytes
from queueclient import ENDPOINT, OWNER_ALIAS, cancel, result, status, submit, wait_status
from receiver import Receiver
from server import Server, running_server

LOG_LEVELS = {"STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"}
STILL_RUNNING = {"detail": "Request is still in progress"}


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    env = {"KINEMA_WEBHOOK_ALLOW_PRIVATE": "1", "KINEMA_WEBHOOK_BACKOFF_S": "0.3"}
    with running_server(tmp_path_factory.mktemp("protocol-fast"), env=env) as s:
        yield s


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("protocol-slow"), engine="tests/engines/slow.py:render") as s:
        yield s


@pytest.fixture(scope="module")
def mask_uri() -> str:
    mask = np.zeros((128, 128), np.uint8)
    mask[32:96, 32:96] = 255
    return data_uri(png_bytes(mask))


def fal_json(r: httpx.Response, code: int) -> Any:
    """Every answer: the expected code, ``Content-Type: application/json`` and ``x-fal-request-id``."""
    assert r.status_code == code, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    assert r.headers.get("x-fal-request-id")
    return r.json()


def fal_error(r: httpx.Response, code: int, error_type: str) -> dict[str, Any]:
    """fal's non-validation error: ``{"detail": str, "error_type": str}`` plus ``X-Fal-Error-Type``."""
    body = fal_json(r, code)
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["error_type"] == error_type
    assert r.headers["x-fal-error-type"] == error_type
    return body


def key_headers(server: Server) -> dict[str, str]:
    return {"Authorization": f"Key {server.key}"}


def new_key(server: Server) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "kinema", "keys", "create", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


# Auth and error shapes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer abc", "Key no-colon", "Key unknown-id:secret"])
def test_every_private_route_answers_401_in_fal_shape(fast, authorization):
    rid = "00000000-0000-0000-0000-000000000000"
    h = {} if authorization is None else {"Authorization": authorization}
    calls = [
        ("POST", f"/{ENDPOINT}"),
        ("POST", f"/run/{ENDPOINT}"),
        ("GET", f"/{OWNER_ALIAS}/requests/{rid}/status"),
        ("GET", f"/{ENDPOINT}/requests/{rid}/status"),
        ("GET", f"/{OWNER_ALIAS}/requests/{rid}/status/stream"),
        ("GET", f"/{OWNER_ALIAS}/requests/{rid}"),
        ("PUT", f"/{OWNER_ALIAS}/requests/{rid}/cancel"),
        ("PUT", f"/{ENDPOINT}/requests/{rid}/cancel"),
        ("POST", "/files/upload"),
        ("GET", "/requests"),
        ("GET", "/usage"),
    ]
    for method, path in calls:
        r = httpx.request(method, fast.url + path, headers=h, json={"prompt": "x"}, timeout=10)
        fal_error(r, 401, "unauthorized")


def test_revoked_key_is_refused_by_a_running_server(fast):
    key = new_key(fast)
    h = {"Authorization": f"Key {key}"}
    assert httpx.get(f"{fast.url}/requests", headers=h).status_code == 200
    subprocess.run(
        [sys.executable, "-m", "kinema", "keys", "revoke", "--data-dir", str(fast.data_dir), key.split(":")[0]],
        capture_output=True,
        text=True,
        check=True,
    )
    fal_error(httpx.get(f"{fast.url}/requests", headers=h), 401, "unauthorized")


def test_unknown_request_is_404_on_every_route_form(fast):
    rid = "00000000-0000-0000-0000-000000000000"
    h = key_headers(fast)
    for prefix in (OWNER_ALIAS, ENDPOINT):
        for suffix in ("", "/", "/status", "/status/", "/status/stream", "/status/stream/"):
            fal_error(httpx.get(f"{fast.url}/{prefix}/requests/{rid}{suffix}", headers=h), 404, "not_found")
        for suffix in ("/cancel", "/cancel/"):
            r = httpx.put(f"{fast.url}/{prefix}/requests/{rid}{suffix}", headers=h)
            assert fal_json(r, 404) == {"status": "NOT_FOUND"}


def test_wrong_method_is_a_json_405(fast):
    h = key_headers(fast)
    for method, path, allowed in [
        ("GET", f"/{ENDPOINT}", "POST"),
        ("POST", f"/{OWNER_ALIAS}/requests/x/status", "GET"),
        ("GET", f"/{OWNER_ALIAS}/requests/x/cancel", "PUT"),
    ]:
        r = httpx.request(method, fast.url + path, headers=h)
        fal_error(r, 405, "method_not_allowed")
        assert allowed in r.headers["allow"]


# Kling input limits ----------------------------------------------------------------------------------------------


def _mask(uri: str, points: int) -> dict[str, Any]:
    return {"mask_url": uri, "trajectories": [{"x": 100 + i, "y": 100 + i} for i in range(points)]}


@pytest.mark.parametrize(
    "patch, loc",
    [
        ({"negative_prompt": "n" * 2501}, ["body", "negative_prompt"]),
        ({"cfg_scale": -0.01}, ["body", "cfg_scale"]),
        ({"cfg_scale": "strong"}, ["body", "cfg_scale"]),
        ({"duration": 5}, ["body", "duration"]),
        ({"duration": "15"}, ["body", "duration"]),
        ({"image_url": None}, ["body", "image_url"]),
        (
            {"dynamic_masks": [{"mask_url": "MASK", "trajectories": [{"x": 1, "y": 1}] * 78}]},
            ["body", "dynamic_masks", 0, "trajectories"],
        ),
        ({"dynamic_masks": [{"mask_url": "MASK", "trajectories": []}]}, ["body", "dynamic_masks", 0, "trajectories"]),
        ({"dynamic_masks": [{"mask_url": "MASK"}]}, ["body", "dynamic_masks", 0, "trajectories"]),
        ({"dynamic_masks": [{"trajectories": [{"x": 1, "y": 1}] * 2}]}, ["body", "dynamic_masks", 0, "mask_url"]),
        (
            {"dynamic_masks": [{"mask_url": "MASK", "trajectories": [{"x": 1}, {"x": 2, "y": 2}]}]},
            ["body", "dynamic_masks", 0, "trajectories", 0, "y"],
        ),
        (
            {
                "tail_image_url": "IMAGE",
                "dynamic_masks": [{"mask_url": "MASK", "trajectories": [{"x": 1, "y": 1}] * 2}],
            },
            ["body", "tail_image_url"],
        ),
    ],
)
def test_kling_limits_refused_at_submit(fast, photo_uri, mask_uri, patch, loc):
    swap = {"IMAGE": photo_uri, "MASK": mask_uri}
    payload = json.loads(
        json.dumps({"prompt": "x", "image_url": photo_uri, **patch}),
        object_hook=lambda d: {k: swap.get(v, v) if isinstance(v, str) else v for k, v in d.items()},
    )
    payload = {k: v for k, v in payload.items() if v is not None}
    before = len(httpx.get(f"{fast.url}/requests", headers=key_headers(fast)).json()["requests"])
    body = fal_json(submit(fast, payload), 422)
    assert any(d["loc"] == loc for d in body["detail"]), body
    assert all(isinstance(d["loc"], list) and d["msg"] and d["type"] for d in body["detail"])
    after = len(httpx.get(f"{fast.url}/requests", headers=key_headers(fast)).json()["requests"])
    assert after == before, "a request refused at submit must not be queued"


def test_kling_limits_accepted_at_their_edges(fast, photo_uri, mask_uri):
    base = {"prompt": "x", "image_url": photo_uri}
    payloads = [
        {**base, "prompt": "p" * 2500, "negative_prompt": "n" * 2500, "cfg_scale": 0},
        {**base, "cfg_scale": 1, "duration": "10"},
        {**base, "static_mask_url": mask_uri, "dynamic_masks": [_mask(mask_uri, 77)] * 6},
        {**base, "dynamic_masks": [_mask(mask_uri, 2)]},
        {**base, "tail_image_url": photo_uri},
    ]
    rids = []
    for p in payloads:
        body = fal_json(submit(fast, p), 200)
        rids.append(body["request_id"])
    for p, rid in zip(payloads, rids, strict=True):
        done = wait_status(fast, rid, "COMPLETED")
        assert "error" not in done, (p.keys(), done.get("error"))
        res = result(fast, rid)
        assert fal_json(res, 200)["video"]["content_type"] == "video/mp4"
        assert res.headers["x-fal-billable-units"] == p.get("duration", "5")


def test_optional_fal_request_headers_are_accepted(fast, photo_uri):
    headers = {
        "X-Fal-Store-IO": "0",
        "x-fal-no-retry": "1",
        "X-Fal-Runner-Hint": "any-runner",
        "X-Fal-Queue-Priority": "normal",
        "X-Fal-Request-Timeout": "30",
    }
    rid = fal_json(submit(fast, {"prompt": "x", "image_url": photo_uri}, headers=headers), 200)["request_id"]
    wait_status(fast, rid, "COMPLETED")
    fal_json(result(fast, rid), 200)


def test_sync_run_failure_answers_like_the_result(fast):
    small = data_uri(png_bytes(np.zeros((200, 200, 3), np.uint8)))  # passes the schema, fails in the worker
    r = httpx.post(
        f"{fast.url}/run/{ENDPOINT}/", json={"prompt": "x", "image_url": small}, headers=key_headers(fast), timeout=60
    )
    detail = fal_json(r, 422)["detail"]
    assert [d["loc"] for d in detail] == [["body", "image_url"]]
    rid = r.headers["x-fal-request-id"]
    assert fal_json(result(fast, rid), 422)["detail"] == detail, "the run's x-fal-request-id names its request"


# Webhooks --------------------------------------------------------------------------------------------------------


def test_failed_request_webhook_carries_the_error_body(fast):
    small = data_uri(png_bytes(np.zeros((200, 200, 3), np.uint8)))  # passes the schema, fails in the worker
    bad = submit(fast, {"prompt": "x", "image_url": small}, params={"fal_webhook": "ftp://example.com/hook"})
    assert any(d["loc"] == ["query", "fal_webhook"] for d in fal_json(bad, 422)["detail"])
    receiver = Receiver()
    try:
        rid = fal_json(submit(fast, {"prompt": "x", "image_url": small}, params={"fal_webhook": receiver.url}), 200)[
            "request_id"
        ]
        wait_status(fast, rid, "COMPLETED")
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.received, "no webhook arrived"
        msg = json.loads(receiver.received[0][1])
        res = result(fast, rid)
        assert set(msg) == {"request_id", "gateway_request_id", "status", "payload", "error"}
        assert msg["request_id"] == rid and msg["gateway_request_id"] == rid
        assert msg["status"] == "ERROR"
        assert msg["payload"] == fal_json(res, 422)
        assert isinstance(msg["error"], str) and "300" in msg["error"]
    finally:
        receiver.close()


# Status stream of a finished request -------------------------------------------------------------------------


def _sse(url: str, headers: dict[str, str], params: dict[str, str], timeout: float = 10) -> list[str]:
    with httpx.stream("GET", url, headers=headers, params=params, timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers.get("x-fal-request-id")
        return list(r.iter_lines())


def test_stream_of_a_finished_request_is_one_event_then_closes(fast, photo_uri):
    rid = submit(fast, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
    full = wait_status(fast, rid, "COMPLETED")
    for url, flag, logs in [
        (f"{fast.url}/{OWNER_ALIAS}/requests/{rid}/status/stream/", "true", full["logs"]),
        (f"{fast.url}/{ENDPOINT}/requests/{rid}/status/stream", "0", None),
    ]:
        lines = _sse(url, key_headers(fast), {"logs": flag})
        events = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
        assert len(events) == 1 and events[0]["status"] == "COMPLETED"
        assert events[0]["logs"] == logs
        assert events[0]["metrics"]["inference_time"] > 0
        assert events[0]["response_url"] == f"{fast.url}/{OWNER_ALIAS}/requests/{rid}"


# Waiting and running requests (slow engine: 0.05 s per frame) -------------------------------------------------


def _finish(server: Server, *rids: str) -> None:
    for rid in rids:
        cancel(server, rid)
    for rid in rids:
        wait_status(server, rid, "COMPLETED", timeout=15)


def test_waiting_requests_wire_shape(slow, photo_uri):
    payload = {"prompt": "x", "image_url": photo_uri}
    a = submit(slow, payload).json()["request_id"]
    wait_status(slow, a, "IN_PROGRESS")
    b = fal_json(submit(slow, payload), 200)
    c = fal_json(submit(slow, payload, headers={"X-Fal-Queue-Priority": "low"}), 200)
    assert (b["queue_position"], c["queue_position"]) == (0, 1)
    try:
        # 1. IN_PROGRESS: 202, the key `logs` present (null with logs off), the URLs the JS client checks.
        st = fal_json(status(slow, a, logs=False), 202)
        assert st["status"] == "IN_PROGRESS" and "logs" in st and st["logs"] is None
        assert st["request_id"] == a and st["response_url"] == f"{slow.url}/{OWNER_ALIAS}/requests/{a}"
        assert st["status_url"].endswith(f"/requests/{a}/status") and st["cancel_url"].endswith(f"/requests/{a}/cancel")
        logs: list = []
        deadline = time.monotonic() + 10
        while not logs and time.monotonic() < deadline:  # the first line follows the state change
            logs = fal_json(status(slow, a, logs=True), 202)["logs"]
        assert logs and {e["level"] for e in logs} <= LOG_LEVELS and {e["source"] for e in logs} == {"USER"}
        for e in logs:
            assert dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).tzinfo is not None

        # 2. IN_QUEUE: 202 with queue_position, same answer under the full path.
        for url in (
            f"{slow.url}/{OWNER_ALIAS}/requests/{b['request_id']}/status",
            f"{slow.url}/{ENDPOINT}/requests/{b['request_id']}/status/",
        ):
            st = fal_json(httpx.get(url, headers=key_headers(slow)), 202)
            assert st["status"] == "IN_QUEUE" and st["queue_position"] == 0
            assert st["response_url"] == b["response_url"]

        # 3. The result of a queued or running request: 400 "still in progress", never 2xx.
        for rid in (a, b["request_id"], c["request_id"]):
            assert fal_json(result(slow, rid), 400) == STILL_RUNNING

        # 4. Cancel under the full path and with a trailing slash; the request then reads COMPLETED with an error.
        r = httpx.put(f"{slow.url}/{ENDPOINT}/requests/{c['request_id']}/cancel/", headers=key_headers(slow))
        assert fal_json(r, 202) == {"status": "CANCELLATION_REQUESTED"}
        r = httpx.put(f"{slow.url}/{OWNER_ALIAS}/requests/{b['request_id']}/cancel/", headers=key_headers(slow))
        assert fal_json(r, 202) == {"status": "CANCELLATION_REQUESTED"}
        for rid in (b["request_id"], c["request_id"]):
            st = fal_json(status(slow, rid, logs=False), 200)
            assert st["status"] == "COMPLETED" and st["error_type"] == "request_cancelled"
            assert isinstance(st["error"], str) and st["error"]
            assert "logs" in st and "inference_time" in st["metrics"]
            fal_error(result(slow, rid), 400, "request_cancelled")
            assert fal_json(cancel(slow, rid), 400) == {"status": "ALREADY_COMPLETED"}
    finally:
        _finish(slow, a, b["request_id"], c["request_id"])


def test_request_timeout_only_bounds_the_wait_before_start(slow, photo_uri):
    rid = submit(slow, {"prompt": "x", "image_url": photo_uri}, headers={"X-Fal-Request-Timeout": "0.5"}).json()
    rid = rid["request_id"]
    try:
        wait_status(slow, rid, "IN_PROGRESS", timeout=5)
        time.sleep(1.2)  # well past the timeout, but processing started before it
        assert fal_json(status(slow, rid), 202)["status"] == "IN_PROGRESS"
    finally:
        _finish(slow, rid)
    assert status(slow, rid).json()["error_type"] == "request_cancelled"


class StreamReader(threading.Thread):
    """Reads an SSE stream in the background, recording (monotonic time, line)."""

    def __init__(self, url: str, headers: dict[str, str]):
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.lines: list[tuple[float, str]] = []
        self.opened = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, params={"logs": "0"}, timeout=40) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                self.opened = time.monotonic()
                for line in r.iter_lines():
                    self.lines.append((time.monotonic(), line))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def pinged(self) -> bool:
        return any(line.startswith(":") for _, line in self.lines)


def test_stream_pings_at_least_every_15_s_whatever_happens(slow, photo_uri):
    """A running stream (a steady flow of progress changes) and a queued one (notified by later submissions
    that do not change its body) both get a ``: ping`` comment within 15 s."""
    payload = {"prompt": "x", "image_url": photo_uri}
    a = submit(slow, {**payload, "duration": "10"}).json()["request_id"]  # runs 15 s
    wait_status(slow, a, "IN_PROGRESS")
    b = submit(slow, payload).json()["request_id"]
    running = StreamReader(f"{slow.url}/{OWNER_ALIAS}/requests/{a}/status/stream", key_headers(slow))
    queued = StreamReader(f"{slow.url}/{ENDPOINT}/requests/{b}/status/stream/", key_headers(slow))
    churn: list[str] = []
    try:
        running.start()
        queued.start()
        start = time.monotonic()
        while time.monotonic() < start + 15.5 and not (running.pinged() and queued.pinged()):
            if time.monotonic() > start + 1.5 * (len(churn) + 1):  # a submission behind b every 1.5 s
                c = submit(slow, payload, headers={"X-Fal-Queue-Priority": "low"}).json()["request_id"]
                churn.append(c)
                cancel(slow, c)
            time.sleep(0.05)
        assert running.pinged(), "no ping on the stream of a running request within 15 s"
        assert queued.pinged(), "no ping on the stream of a queued request within 15 s"
    finally:
        _finish(slow, b, a)
    running.join(10)
    queued.join(10)
    for reader in (running, queued):
        assert reader.error is None, reader.error
        assert not reader.is_alive(), "the stream did not close after COMPLETED"
        first_ping = next(t for t, line in reader.lines if line.startswith(":"))
        assert first_ping - reader.opened <= 15.0
        # Framing: `data: <json>` events and `:` comments, each followed by a blank line.
        texts = [line for _, line in reader.lines]
        assert all(line == "" or line.startswith("data: ") or line == ": ping" for line in texts)
        assert all(texts[i + 1] == "" for i, line in enumerate(texts) if line)
        events = [json.loads(line[len("data: ") :]) for line in texts if line.startswith("data: ")]
        assert events[-1]["status"] == "COMPLETED" and events[-1]["error_type"] == "request_cancelled"
        assert all(e["status"] != "COMPLETED" for e in events[:-1])
    q_events = [json.loads(line[6:]) for _, line in queued.lines if line.startswith("data: ")]
    assert q_events[0]["status"] == "IN_QUEUE" and q_events[0]["queue_position"] == 0
