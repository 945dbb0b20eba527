"""Finished results and their files are kept for the retention period, then purged."""

from __future__ import annotations

import time

import httpx
from queueclient import result, status, submit, wait_status
from server import running_server


def test_results_and_files_expire_after_retention(tmp_path, photo_uri):
    with running_server(tmp_path, env={"KINEMA_RETENTION_S": "2"}) as server:
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, rid, "COMPLETED")
        video_url = result(server, rid).json()["video"]["url"]
        assert httpx.get(video_url).status_code == 200
        deadline = time.monotonic() + 15
        while status(server, rid).status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status(server, rid).status_code == 404
        assert result(server, rid).status_code == 404
        assert httpx.get(video_url).status_code == 404
        listing = httpx.get(server.url + "/requests", headers=server.headers).json()["requests"]
        assert rid not in [r["request_id"] for r in listing]


def test_results_are_kept_within_retention(tmp_path, photo_uri):
    with running_server(tmp_path, env={"KINEMA_RETENTION_S": "3600"}) as server:
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, rid, "COMPLETED")
        time.sleep(1.0)
        assert result(server, rid).status_code == 200
