"""Workers through a real server: the engine loads once per worker, on its device, before it takes work;
a load failure is DEFUNCT and ``/health`` says why; a cancelled engine that ignores the grace period is
killed and reloaded; the server's own file URLs are its own under every name; a clean shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from queueclient import cancel, result, status, submit, wait_status
from server import running_server

COUNTING = "tests/engines/load_counting.py:load"


def loads(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    return [(int(pid), device) for pid, device in (ln.split() for ln in path.read_text().splitlines())]


def test_the_engine_loads_once_per_worker_on_its_device_and_serves_every_job(tmp_path: Path, photo_uri: str) -> None:
    record = tmp_path / "loads.txt"
    env = {"KINEMA_TEST_LOADS": str(record), "KINEMA_DEVICES": "cuda:0,cuda:1", "KINEMA_TEST_LOAD_S": "1"}
    with running_server(tmp_path, engine=COUNTING, workers=2, env=env) as server:
        deadline = time.monotonic() + 60
        while not httpx.get(server.url + "/health").json().get("can_take_work") and time.monotonic() < deadline:
            time.sleep(0.1)
        health = httpx.get(server.url + "/health").json()
        assert sorted(w["device"] for w in health["workers"]) == ["cuda:0", "cuda:1"]
        rids = [submit(server, {"prompt": f"job {i}", "image_url": photo_uri}).json()["request_id"] for i in range(6)]
        for rid in rids:
            assert wait_status(server, rid, "COMPLETED")["status"] == "COMPLETED"
            assert result(server, rid).status_code == 200
        # Six jobs, two workers, two loads: one per worker, each on its own device, none per job.
        assert sorted(device for _, device in loads(record)) == ["cuda:0", "cuda:1"]
        assert len({pid for pid, _ in loads(record)}) == 2


def test_a_load_failure_makes_the_server_say_why_it_cannot_take_work(tmp_path: Path, photo_uri: str) -> None:
    env = {"KINEMA_TEST_LOAD_FAIL": "CUDA error: out of memory (fixture)"}
    with running_server(tmp_path, engine=COUNTING, env=env) as server:
        deadline = time.monotonic() + 60
        r = httpx.get(server.url + "/health")
        while r.status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
            r = httpx.get(server.url + "/health")
        body = r.json()
        assert r.status_code == 503 and body["status"] == "unavailable" and body["can_take_work"] is False
        assert "CUDA error: out of memory (fixture)" in body["reason"]
        assert body["workers"][0]["state"] == "DEFUNCT"
        # Requests are still accepted (another worker or server may take them) but never handed to it.
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        time.sleep(1.5)
        assert status(server, rid).json()["status"] == "IN_QUEUE"
        assert "engine failed to load" in server.log_text()


def test_an_engine_ignoring_cancel_is_killed_and_the_reload_cost_logged(tmp_path: Path, photo_uri: str) -> None:
    with running_server(
        tmp_path, engine="tests/engines/stubborn.py:load", env={"KINEMA_CANCEL_GRACE_S": "1"}
    ) as server:
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        deadline = time.monotonic() + 60
        while not any(e["message"].startswith("stubborn engine") for e in status(server, rid).json()["logs"] or []):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert cancel(server, rid).status_code == 202
        done = wait_status(server, rid, "COMPLETED", timeout=20)
        assert done["error_type"] == "request_cancelled"
        deadline = time.monotonic() + 60
        while "engine reload cost" not in server.log_text():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.1)
        work = server.data_dir / "work"
        leftovers = [p for p in work.rglob("*.mp4")] if work.exists() else []
        assert leftovers == []  # the killed render's partial MP4 is gone


def test_a_file_uploaded_via_localhost_is_read_when_submitting_via_127_0_0_1(tmp_path: Path, photo_png: bytes) -> None:
    with running_server(tmp_path) as server:
        port = server.host_port.rsplit(":", 1)[1]
        up = httpx.post(
            f"http://localhost:{port}/files/upload",
            content=photo_png,
            headers={**server.headers, "Content-Type": "image/png"},
        )
        assert up.status_code == 200, up.text
        url = up.json()["url"]
        assert url.startswith(f"http://localhost:{port}/files/")
        assert server.url.startswith("http://127.0.0.1:")
        rid = submit(server, {"prompt": "x", "image_url": url}).json()["request_id"]
        done = wait_status(server, rid, "COMPLETED")
        assert result(server, rid).status_code == 200, done
        # The same URL on another port is not this server's: fetched like any URL, and loopback is refused.
        other = url.replace(f":{port}/", f":{int(port) + 1}/")
        rid = submit(server, {"prompt": "x", "image_url": other}).json()["request_id"]
        wait_status(server, rid, "COMPLETED")
        res = result(server, rid)
        assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["body", "image_url"]


def test_shutdown_leaves_no_leaked_semaphore_warning(tmp_path: Path, photo_uri: str) -> None:
    with running_server(tmp_path, engine="tests/engines/slow.py:load", workers=2) as server:
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, rid, "IN_PROGRESS")
        cancel(server, rid)
        wait_status(server, rid, "COMPLETED")
        proc = server.proc
    assert proc.returncode is not None
    text = server.log_text()
    assert "leaked semaphore" not in text and "resource_tracker" not in text, text[-2000:]
