"""S3 storage through a real ``kinema serve``, against moto's standalone S3 server on loopback.

Upload (``/files/upload`` and fal's ``/storage/upload/initiate`` + PUT), an uploaded file used as a job's
input (read from the bucket: the server's own loopback URL would be refused over HTTP), the output video
downloaded both streamed and through a presigned redirect, and retention deleting the objects.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import jpeg_bytes
from moto_s3 import MotoS3, s3  # noqa: F401  (the session fixture)
from queueclient import result, status, submit, wait_status
from server import Server, running_server

from kinema.media.encode import read_frames

pytest.importorskip("boto3")


def _upload_through_fal_flow(server: Server, data: bytes) -> str:
    """fal's storage flow: initiate → PUT the bytes to upload_url → file_url."""
    init = httpx.post(
        server.url + "/storage/upload/initiate",
        headers=server.headers,
        json={"content_type": "image/jpeg", "file_name": "astronaut.jpg"},
    )
    assert init.status_code == 200, init.text
    put = httpx.put(init.json()["upload_url"], content=data, headers={"Content-Type": "image/jpeg"})
    assert put.status_code == 200, put.text
    file_url: str = init.json()["file_url"]
    assert put.json()["url"] == file_url
    return file_url


def _object_of(url: str, prefix: str) -> str:
    """The object key a kinema file URL maps to."""
    file_id, name = url.split("/files/", 1)[1].split("/")
    return f"{prefix}/{file_id}/{name}"


def _check_clip(data: bytes, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    frames = read_frames(path)
    assert frames.shape == (150, 90, 90, 3)  # 5 s at 30 fps; square photo → 90x90 (fixture short side)


def test_uploads_inputs_and_streamed_outputs_live_in_the_bucket(s3: MotoS3, tmp_path: Path, photo) -> None:  # noqa: F811
    image = jpeg_bytes(photo)
    env = s3.env("kinema-stream", "deploy/files")
    with running_server(tmp_path, env=env) as server:
        # 1. POST /files/upload: the object holds the bytes, the download (streamed by kinema) gives them back.
        up = httpx.post(
            server.url + "/files/upload",
            headers={**server.headers, "Content-Type": "image/jpeg", "X-Fal-File-Name": "a.jpg"},
            content=image,
        )
        assert up.status_code == 200, up.text
        key = _object_of(up.json()["url"], "deploy/files")
        obj = s3.client.get_object(Bucket="kinema-stream", Key=key)
        assert obj["Body"].read() == image and obj["ContentType"] == "image/jpeg"
        got = httpx.get(up.json()["url"])
        assert got.status_code == 200 and got.content == image
        assert got.headers["content-type"] == "image/jpeg"
        part = httpx.get(up.json()["url"], headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == image[:100]

        # 2. fal's initiate + PUT flow, then that file_url as the job's input.
        file_url = _upload_through_fal_flow(server, image)
        assert s3.client.head_object(Bucket="kinema-stream", Key=_object_of(file_url, "deploy/files"))
        rid = submit(server, {"prompt": "s3 input", "image_url": file_url}).json()["request_id"]
        wait_status(server, rid, "COMPLETED")
        res = result(server, rid)
        assert res.status_code == 200, res.text
        video = res.json()["video"]
        assert video["url"].startswith(server.url + "/files/")

        # 3. The output is an object; the local files dir stays empty.
        out_key = _object_of(video["url"], "deploy/files")
        head = s3.client.head_object(Bucket="kinema-stream", Key=out_key)
        assert head["ContentType"] == "video/mp4" and head["ContentLength"] == video["file_size"]
        files_dir = server.data_dir / "files"
        assert not files_dir.exists() or not any(files_dir.iterdir())
        streamed = httpx.get(video["url"])
        assert streamed.status_code == 200 and "location" not in streamed.headers
        _check_clip(streamed.content, tmp_path, "streamed.mp4")

        # An unknown file under the prefix is a 404, not a 500.
        missing = video["url"].rsplit("/", 2)[0] + "/" + "0" * 32 + "/x.mp4"
        assert httpx.get(missing).status_code == 404


def test_downloads_redirect_to_presigned_urls(s3: MotoS3, tmp_path: Path, photo_uri: str) -> None:  # noqa: F811
    env = s3.env("kinema-redirect", "out", KINEMA_S3_DOWNLOADS="redirect")
    with running_server(tmp_path, env=env) as server:
        rid = submit(server, {"prompt": "redirected", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, rid, "COMPLETED")
        url = result(server, rid).json()["video"]["url"]
        first = httpx.get(url)
        assert first.status_code == 307
        location = first.headers["location"]
        assert location.startswith(s3.endpoint + "/kinema-redirect/out/") and "Signature" in location
        followed = httpx.get(url, follow_redirects=True)  # the bytes come from the store, not from kinema
        assert followed.status_code == 200 and str(followed.url).startswith(s3.endpoint)
        _check_clip(followed.content, tmp_path, "redirected.mp4")


def test_retention_purges_the_objects(s3: MotoS3, tmp_path: Path, photo) -> None:  # noqa: F811
    env = s3.env("kinema-retention", "r", KINEMA_RETENTION_S="8")
    with running_server(tmp_path, env=env) as server:
        file_url = _upload_through_fal_flow(server, jpeg_bytes(photo))
        rid = submit(server, {"prompt": "purged", "image_url": file_url}).json()["request_id"]
        wait_status(server, rid, "COMPLETED")
        video_url = result(server, rid).json()["video"]["url"]
        assert _object_of(video_url, "r") in s3.keys("kinema-retention")  # just written: younger than 8 s
        deadline = time.monotonic() + 30
        while (s3.keys("kinema-retention") or status(server, rid).status_code != 404) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert s3.keys("kinema-retention") == []
        assert status(server, rid).status_code == 404
        assert httpx.get(video_url).status_code == 404
        assert httpx.get(file_url).status_code == 404


def test_an_unreachable_store_gives_storage_error_not_a_crash(tmp_path: Path, photo_uri: str) -> None:
    """Nothing listens on the endpoint: uploads answer 500 ``storage_error``, a job ends with it, the server lives."""
    from moto_s3 import CREDENTIALS
    from server import free_port

    env = {
        **CREDENTIALS,
        "KINEMA_STORAGE_URL": "s3://nowhere/x",
        "KINEMA_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_MAX_ATTEMPTS": "1",
    }
    with running_server(tmp_path, env=env) as server:
        up = httpx.post(
            server.url + "/files/upload",
            headers={**server.headers, "Content-Type": "image/png"},
            content=b"\x89PNG\r\n\x1a\n" + b"0" * 100,
            timeout=60,
        )
        assert up.status_code == 500 and up.json()["error_type"] == "storage_error", up.text
        rid = submit(server, {"prompt": "nowhere", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, rid, "COMPLETED", timeout=90)
        res = result(server, rid)
        assert res.status_code == 500 and "storage_error" in res.text, res.text
        assert httpx.get(server.url + "/health").status_code == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KINEMA_STORAGE_URL": "s3:///prefix"}, "storage URL must be s3://bucket[/prefix]"),
        ({"KINEMA_STORAGE_URL": "s3://b/p", "KINEMA_S3_DOWNLOADS": "sideways"}, "KINEMA_S3_DOWNLOADS must be one of"),
        ({"KINEMA_STORAGE_URL": "s3://b/p", "KINEMA_S3_ADDRESSING_STYLE": "x"}, "KINEMA_S3_ADDRESSING_STYLE must be"),
    ],
)
def test_bad_s3_settings_are_one_line_errors_before_anything_starts(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    out = subprocess.run(
        [sys.executable, "-m", "kinema", "serve", "--port", "0", "--data-dir", str(data)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stderr.startswith("kinema: error: " + message), out.stderr
    assert "Traceback" not in out.stderr and not data.exists()
