"""Sync run under /run: waits for the result; a dropped connection cancels the job."""

from __future__ import annotations

import time

import httpx
from queueclient import ENDPOINT
from server import running_server


def test_sync_run_returns_output_and_drop_cancels(tmp_path, photo_uri):
    with running_server(tmp_path, engine="tests/engines/slow.py:render") as server:
        payload = {"prompt": "x", "image_url": photo_uri}
        r = httpx.post(f"{server.url}/run/{ENDPOINT}", json=payload, headers=server.headers, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["video"]["url"].startswith(server.url + "/files/")
        bad = httpx.post(f"{server.url}/run/{ENDPOINT}", json={"image_url": photo_uri}, headers=server.headers)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "prompt"]

        # Drop the connection after 1 s: the job must end cancelled, not run to the end.
        try:
            httpx.post(f"{server.url}/run/{ENDPOINT}", json=payload, headers=server.headers, timeout=1.0)
        except httpx.ReadTimeout:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            items = httpx.get(f"{server.url}/requests", headers=server.headers).json()["requests"]
            newest = items[0]
            if newest["status"] == "COMPLETED":
                break
            time.sleep(0.1)
        assert newest["status"] == "COMPLETED"
        assert newest["error_type"] == "request_cancelled"
