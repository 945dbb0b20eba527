"""The queue API end to end against a real server (trivial fixture engine)."""

from __future__ import annotations

import subprocess
import sys

import av
import httpx
import pytest
from conftest import data_uri, png_bytes
from queueclient import ENDPOINT, OWNER_ALIAS, cancel, result, status, submit, wait_status
from server import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("queue")) as s:
        yield s


def test_submit_status_result_roundtrip(server, photo_uri):
    r = submit(server, {"prompt": "a slow push in", "image_url": photo_uri})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "IN_QUEUE"
    rid = body["request_id"]
    assert body["gateway_request_id"] == rid
    assert isinstance(body["queue_position"], int)
    assert body["status_url"] == f"{server.url}/{OWNER_ALIAS}/requests/{rid}/status"
    assert body["response_url"] == f"{server.url}/{OWNER_ALIAS}/requests/{rid}"
    assert body["cancel_url"] == f"{server.url}/{OWNER_ALIAS}/requests/{rid}/cancel"
    assert r.headers["x-fal-request-id"] == rid

    done = wait_status(server, rid, "COMPLETED")
    st = status(server, rid)
    assert st.status_code == 200
    assert done["metrics"]["inference_time"] > 0
    messages = [e["message"] for e in done["logs"]]
    assert any("trivial engine" in m for m in messages)
    assert all(set(e) == {"message", "level", "source", "timestamp"} for e in done["logs"])
    assert "error" not in done

    res = result(server, rid)
    assert res.status_code == 200
    assert res.headers["x-fal-request-id"] == rid
    assert res.headers["x-fal-billable-units"] == "5"
    video = res.json()["video"]
    assert video["content_type"] == "video/mp4"
    assert video["url"].startswith(server.url + "/files/")
    dl = httpx.get(video["url"], timeout=10)
    assert dl.status_code == 200 and dl.headers["content-type"] == "video/mp4"
    assert len(dl.content) == video["file_size"]
    part = httpx.get(video["url"], headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["content-range"] == f"bytes 0-99/{video['file_size']}"
    path = server.data_dir / "dl.mp4"
    path.write_bytes(dl.content)
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == 150

    usage = httpx.get(f"{server.url}/usage", headers=server.headers).json()
    assert usage["billed_seconds"] >= 5
    assert usage["cost_usd"] == pytest.approx(usage["billed_seconds"] * 0.045)


def test_logs_flag_forms(server, photo_uri):
    rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
    wait_status(server, rid, "COMPLETED")
    h = server.headers
    base = f"{server.url}/{OWNER_ALIAS}/requests/{rid}/status"
    assert httpx.get(base, params={"logs": "0"}, headers=h).json()["logs"] is None
    assert httpx.get(base, params={"logs": "false"}, headers=h).json()["logs"] is None
    assert len(httpx.get(base, params={"logs": "true"}, headers=h).json()["logs"]) > 0
    assert len(httpx.get(base, params={"logs": "1"}, headers=h).json()["logs"]) > 0


def test_full_path_and_trailing_slash_routes(server, photo_uri):
    r = httpx.post(f"{server.url}/{ENDPOINT}/", json={"prompt": "x", "image_url": photo_uri}, headers=server.headers)
    assert r.status_code == 200
    rid = r.json()["request_id"]
    wait_status(server, rid, "COMPLETED")
    for url in (f"{server.url}/{ENDPOINT}/requests/{rid}/status", f"{server.url}/{OWNER_ALIAS}/requests/{rid}/status/"):
        assert httpx.get(url, headers=server.headers).json()["status"] == "COMPLETED"
    assert httpx.get(f"{server.url}/{ENDPOINT}/requests/{rid}/", headers=server.headers).status_code == 200


def test_auth_required_and_keys_isolated(server, photo_uri):
    payload = {"prompt": "x", "image_url": photo_uri}
    r = httpx.post(f"{server.url}/{ENDPOINT}", json=payload)
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"
    assert r.json()["error_type"] == "unauthorized"
    bad = server.key.split(":")[0] + ":wrong-secret"
    assert submit(server, payload, key=bad).status_code == 401

    rid = submit(server, payload).json()["request_id"]
    out = subprocess.run(
        [sys.executable, "-m", "kinema", "keys", "create", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    other = out.stdout.strip().splitlines()[-1]
    assert status(server, rid, key=other).status_code == 404
    assert result(server, rid, key=other).status_code == 404
    c = cancel(server, rid, key=other)
    assert c.status_code == 404 and c.json() == {"status": "NOT_FOUND"}
    assert status(server, rid).status_code in (200, 202)
    listed = httpx.get(f"{server.url}/requests", headers={"Authorization": f"Key {other}"}).json()["requests"]
    assert all(item["request_id"] != rid for item in listed)


@pytest.mark.parametrize(
    "patch, loc",
    [
        ({"prompt": None}, ["body", "prompt"]),
        ({"prompt": "x" * 2501}, ["body", "prompt"]),
        ({"cfg_scale": 1.5}, ["body", "cfg_scale"]),
        ({"duration": "7"}, ["body", "duration"]),
        ({"image_url": "ftp://example.com/a.png"}, ["body", "image_url"]),
        (
            {"dynamic_masks": [{"mask_url": "https://example.com/m.png", "trajectories": [{"x": 1, "y": 1}]}]},
            ["body", "dynamic_masks", 0, "trajectories"],
        ),
        (
            {
                "dynamic_masks": [
                    {"mask_url": "https://example.com/m.png", "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}
                ]
                * 7
            },
            ["body", "dynamic_masks"],
        ),
        (
            {"tail_image_url": "https://example.com/t.png", "static_mask_url": "https://example.com/s.png"},
            ["body", "tail_image_url"],
        ),
    ],
)
def test_submit_refuses_bad_json_with_422(server, photo_uri, patch, loc):
    payload = {"prompt": "x", "image_url": photo_uri, **patch}
    payload = {k: v for k, v in payload.items() if v is not None}
    r = submit(server, payload)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"] == loc for d in detail), detail
    assert all(d["msg"] and d["type"] for d in detail)


def test_invalid_json_body_is_422(server):
    r = httpx.post(f"{server.url}/{ENDPOINT}", content=b"{not json", headers=server.headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body"]


def test_file_problems_complete_the_request_with_422(server):
    import numpy as np

    small = data_uri(png_bytes(np.zeros((200, 200, 3), np.uint8)))
    rid = submit(server, {"prompt": "x", "image_url": small}).json()["request_id"]
    done = wait_status(server, rid, "COMPLETED")
    assert done["error_type"]
    res = result(server, rid)
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"] == ["body", "image_url"]
    assert "300" in res.json()["detail"][0]["msg"]


def test_loopback_input_url_is_refused(server, photo_uri):
    # The server's own /health is on loopback: fetching it as an input must be refused (SSRF).
    rid = submit(server, {"prompt": "x", "image_url": f"{server.url.replace('localhost', '127.0.0.1')}/health"}).json()[
        "request_id"
    ]
    wait_status(server, rid, "COMPLETED")
    res = result(server, rid)
    assert res.status_code == 422
    d = res.json()["detail"][0]
    assert d["loc"] == ["body", "image_url"]
    assert "loopback" in d["msg"]


def test_uploaded_file_is_used_from_storage(server, photo_png):
    up = httpx.post(
        f"{server.url}/files/upload",
        content=photo_png,
        headers={**server.headers, "Content-Type": "image/png", "X-Fal-File-Name": "astro.png"},
    )
    assert up.status_code == 200, up.text
    f = up.json()
    assert f["content_type"] == "image/png" and f["file_size"] == len(photo_png)
    assert f["file_name"].endswith(".png")
    assert httpx.get(f["url"]).content == photo_png
    # Loopback fetching is forbidden, so this only works because own URLs are read from storage.
    rid = submit(server, {"prompt": "x", "image_url": f["url"]}).json()["request_id"]
    wait_status(server, rid, "COMPLETED")
    assert result(server, rid).status_code == 200


def test_multipart_upload(server, photo_png):
    up = httpx.post(
        f"{server.url}/files/upload", files={"file": ("a.png", photo_png, "image/png")}, headers=server.headers
    )
    assert up.status_code == 200, up.text
    assert up.json()["file_size"] == len(photo_png)


def test_unknown_ids_and_routes_are_json_404(server):
    r = status(server, "00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    r = httpx.get(f"{server.url}/nope", headers=server.headers)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert "x-fal-request-id" in r.headers


def test_result_before_completion_is_400(server, photo_uri):
    # Submit several so the last one is still queued when asked.
    rids = [
        submit(server, {"prompt": "x", "image_url": photo_uri, "duration": "10"}).json()["request_id"] for _ in range(3)
    ]
    r = result(server, rids[-1])
    if r.status_code != 200:  # it may have finished already on a fast machine
        assert r.status_code == 400
        assert r.json() == {"detail": "Request is still in progress"}
    for rid in rids:
        wait_status(server, rid, "COMPLETED")
