"""The SSE status stream: only new log lines per event, closes after COMPLETED."""

from __future__ import annotations

import json

import httpx
from queueclient import OWNER_ALIAS, submit
from server import running_server


def test_status_stream_sends_new_logs_and_closes(tmp_path, photo_uri):
    with running_server(tmp_path, engine="tests/engines/slow.py:render") as server:
        rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
        events = []
        with httpx.stream(
            "GET",
            f"{server.url}/{OWNER_ALIAS}/requests/{rid}/status/stream",
            params={"logs": "1"},
            headers=server.headers,
            timeout=60,
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[len("data: ") :]))
        statuses = [e["status"] for e in events]
        assert statuses[-1] == "COMPLETED"
        assert "IN_PROGRESS" in statuses
        assert statuses.index("IN_PROGRESS") < len(statuses) - 1
        streamed = [entry["message"] for e in events for entry in (e["logs"] or [])]
        full = httpx.get(
            f"{server.url}/{OWNER_ALIAS}/requests/{rid}/status", params={"logs": 1}, headers=server.headers
        ).json()["logs"]
        # Appending each event's logs (as the JS client does) rebuilds the full log exactly once.
        assert streamed == [e["message"] for e in full]
        assert any("slow engine at frame 60" in m for m in streamed)
