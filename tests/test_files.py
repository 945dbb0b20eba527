"""File routes on a live server: content types, Range requests, size limits, public URLs."""

from __future__ import annotations

import httpx
import pytest
from queueclient import result, submit, wait_status
from server import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("files"), env={"KINEMA_UPLOAD_MAX_BYTES": "2000000"}) as s:
        yield s


def upload(server, data: bytes, ctype: str, name: str | None = None) -> httpx.Response:
    headers = {**server.headers, "Content-Type": ctype}
    if name:
        headers["X-Fal-File-Name"] = name
    return httpx.post(f"{server.url}/files/upload", content=data, headers=headers)


def test_download_serves_sniffed_type_and_ranges(server, photo_png):
    # The declared type is wrong on purpose: the bytes decide.
    f = upload(server, photo_png, "application/octet-stream", "astro").json()
    assert f["content_type"] == "image/png"
    full = httpx.get(f["url"])
    assert full.headers["content-type"] == "image/png" and full.content == photo_png
    part = httpx.get(f["url"], headers={"Range": "bytes=8-23"})
    assert part.status_code == 206
    assert part.content == photo_png[8:24]
    assert part.headers["content-range"] == f"bytes 8-23/{len(photo_png)}"
    tail = httpx.get(f["url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == photo_png[-10:]
    head = httpx.head(f["url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(photo_png)


def test_video_output_is_mp4_with_ranges(server, photo_uri):
    rid = submit(server, {"prompt": "x", "image_url": photo_uri}).json()["request_id"]
    wait_status(server, rid, "COMPLETED")
    video = result(server, rid).json()["video"]
    r = httpx.get(video["url"], headers={"Range": "bytes=0-11"})
    assert r.status_code == 206 and r.headers["content-type"] == "video/mp4"
    assert r.content[4:8] == b"ftyp"
    assert video["file_size"] == int(r.headers["content-range"].rsplit("/", 1)[1])


def test_upload_over_the_limit_is_413_and_kept_nothing(server):
    r = upload(server, b"\0" * 2_100_000, "application/octet-stream")
    assert r.status_code == 413
    assert r.json()["detail"]
    files_dir = server.data_dir / "files"
    leftovers = [p for p in files_dir.rglob("*") if p.is_file() and p.stat().st_size >= 2_000_000]
    assert leftovers == []


def test_upload_needs_a_key_and_download_of_unknown_file_is_404(server, photo_png):
    r = httpx.post(f"{server.url}/files/upload", content=photo_png, headers={"Content-Type": "image/png"})
    assert r.status_code == 401
    f = upload(server, photo_png, "image/png").json()
    assert httpx.get(f["url"] + "x").status_code == 404
    assert httpx.get(f"{server.url}/files/{'0' * 32}/a.png").status_code == 404
    assert httpx.get(f"{server.url}/files/..%2F..%2Fkinema.sqlite3/x").status_code == 404


def test_public_url_is_the_base_of_handed_out_urls(tmp_path, photo_png):
    public = "https://videos.example.test/kinema"
    with running_server(tmp_path, env={"KINEMA_PUBLIC_URL": public}) as server:
        f = upload(server, photo_png, "image/png").json()
        assert f["url"].startswith(public + "/files/")
        # The server recognises its own public URLs and reads them from storage (no network).
        rid = submit(server, {"prompt": "x", "image_url": f["url"]}).json()
        assert rid["status_url"].startswith(public + "/")
        wait_status(server, rid["request_id"], "COMPLETED")
        assert result(server, rid["request_id"]).json()["video"]["url"].startswith(public + "/files/")


def test_uploaded_html_is_never_run_as_a_page(server):
    f = upload(server, b"<html><script>alert(1)</script></html>", "text/html", "x.html").json()
    r = httpx.get(f["url"])
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
