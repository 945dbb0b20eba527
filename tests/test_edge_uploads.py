"""Upload slots per key and uploaded files past retention (issue 7, points 23 and 25).

One key filled all 10,000 pending upload slots in 22 s and every other key got 429 for up to an hour;
uploaded files were never removed.
"""

from __future__ import annotations

import time

import httpx
from server import create_key, running_server

INITIATE = "/storage/upload/initiate"


def _initiate(server, key):
    return httpx.post(
        server.url + INITIATE,
        headers={"Authorization": f"Key {key}"},
        json={"content_type": "image/png", "file_name": "a.png"},
    )


def test_pending_upload_slots_are_limited_per_key(tmp_path, photo_png):
    with running_server(tmp_path, env={"KINEMA_MAX_PENDING_UPLOADS_PER_KEY": "5"}) as server:
        other = create_key(server.data_dir)
        slots = [_initiate(server, server.key) for _ in range(5)]
        assert [r.status_code for r in slots] == [200] * 5
        refused = _initiate(server, server.key)
        assert refused.status_code == 429
        assert refused.json()["error_type"] == "rate_limited" and "5 pending uploads" in refused.json()["detail"]
        # Another key is not locked out by the first one.
        assert [_initiate(server, other).status_code for _ in range(5)] == [200] * 5
        assert _initiate(server, other).status_code == 429
        # Using a slot frees it for its key.
        put = httpx.put(slots[0].json()["upload_url"], content=photo_png, headers={"Content-Type": "image/png"})
        assert put.status_code == 200
        assert httpx.get(slots[0].json()["file_url"]).content == photo_png
        assert _initiate(server, server.key).status_code == 200
        assert _initiate(server, server.key).status_code == 429


def test_uploaded_files_past_retention_are_removed(tmp_path, photo_png):
    with running_server(tmp_path, env={"KINEMA_RETENTION_S": "2"}) as server:
        up = httpx.post(
            server.url + "/files/upload", content=photo_png, headers={**server.headers, "Content-Type": "image/png"}
        )
        assert up.status_code == 200
        url = up.json()["url"]
        file_id = url.split("/")[-2]
        folder = server.data_dir / "files" / file_id
        assert folder.is_dir() and httpx.get(url).status_code == 200
        deadline = time.monotonic() + 10
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not folder.exists(), "the uploaded file outlived its retention"
        assert httpx.get(url).status_code == 404
        assert "removed stored files past retention" in server.log_text()
