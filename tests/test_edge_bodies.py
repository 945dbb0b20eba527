"""Body caps hold whatever the framing; deep JSON is a 422; a client leaving mid-body is one log line.

Issue 7, points 17, 19 and 25: a 400 MB chunked submit used to be read whole (server RSS 2.6 GB, database
1.3 GB); JSON nested ~1000 deep was a 500; a disconnect mid-body logged two tracebacks.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from edge_client import open_socket, peak_rss_mib, read_reply, rss_mib, send_chunked
from server import running_server

ENDPOINT = "/fal-ai/kling-video/v1/standard/image-to-video"
MIB = 1024 * 1024


def _json_chunks(total: int, chunk: int = MIB) -> Iterator[bytes]:
    """A JSON submit whose prompt is ``total`` bytes long, in ``chunk``-sized pieces."""
    yield b'{"image_url": "https://example.com/a.png", "prompt": "'
    for _ in range(total // chunk):
        yield b"a" * chunk
    yield b'"}'


def _db_bytes(data_dir) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("kinema.sqlite3*"))


@pytest.mark.parametrize("path", [ENDPOINT, "/run" + ENDPOINT])
def test_chunked_json_body_cut_off_at_the_cap(tmp_path, path):
    cap = 8 * MIB
    with running_server(tmp_path, env={"KINEMA_MAX_BODY_BYTES": str(cap)}) as server:
        pid = server.proc.pid
        before = rss_mib(pid)
        (status, headers, body), sent = send_chunked(
            server, path, _json_chunks(256 * MIB), {**server.headers, "Content-Type": "application/json"}
        )
        assert status == 413, body
        assert json.loads(body)["error_type"] == "payload_too_large"
        assert headers.get("connection") == "close"
        # The server stopped reading at the cap instead of taking the 256 MiB.
        assert sent < 128 * MIB
        growth = peak_rss_mib(pid) - before
        print(f"server RSS before {before:.0f} MiB, peak after a 256 MiB chunked body: +{growth:.1f} MiB")
        assert growth < 48, growth
        assert _db_bytes(server.data_dir) < 4 * MIB
        # And the server is fine afterwards.
        assert httpx.get(server.url + "/health").status_code == 200


def test_chunked_body_under_the_cap_is_accepted(tmp_path, photo_uri):
    with running_server(tmp_path) as server:
        raw = json.dumps({"prompt": "a wave", "image_url": photo_uri}).encode()
        pieces = [raw[i : i + 1000] for i in range(0, len(raw), 1000)]
        (status, _, body), _ = send_chunked(
            server, ENDPOINT, pieces, {**server.headers, "Content-Type": "application/json"}
        )
        assert status == 200, body
        assert json.loads(body)["status"] == "IN_QUEUE"


def _multipart_chunks(file_bytes_total: int, boundary: str, piece: bytes) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for _ in range(file_bytes_total // len(piece)):
        yield piece
    yield f"\r\n--{boundary}--\r\n".encode()


def test_chunked_multipart_upload_is_streamed_and_capped(tmp_path):
    boundary = "kinemaedgeboundary"
    piece = bytes(range(256)) * 4096  # 1 MiB
    with running_server(tmp_path, env={"KINEMA_UPLOAD_MAX_BYTES": str(48 * MIB)}) as server:
        pid = server.proc.pid
        headers = {**server.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        # 40 MiB under the 48 MiB cap: stored whole, without the server holding it in memory.
        before = rss_mib(pid)
        (status, _, body), _ = send_chunked(
            server, "/files/upload", _multipart_chunks(40 * MIB, boundary, piece), headers
        )
        assert status == 200, body
        growth = peak_rss_mib(pid) - before
        print(f"server RSS peak growth for a 40 MiB chunked multipart upload: +{growth:.1f} MiB")
        assert growth < 24, growth
        stored = json.loads(body)
        assert stored["file_size"] == 40 * MIB
        got = httpx.get(stored["url"], timeout=60).content
        assert got == piece * 40
        # 200 MiB: cut off at the cap with 413, nothing stored.
        files_before = {p.name for p in (server.data_dir / "files").iterdir()}
        (status, _, body), sent = send_chunked(
            server, "/files/upload", _multipart_chunks(200 * MIB, boundary, piece), headers
        )
        assert status == 413, body
        assert sent < 120 * MIB
        time.sleep(0.5)
        assert {p.name for p in (server.data_dir / "files").iterdir()} == files_before


def test_initiate_has_a_small_body_cap(tmp_path):
    with running_server(tmp_path) as server:
        pad = "x" * (64 * 1024)
        r = httpx.post(
            server.url + "/storage/upload/initiate",
            headers=server.headers,
            json={"content_type": "image/png", "file_name": "a.png", "pad": pad},
        )
        assert r.status_code == 413
        assert r.json()["error_type"] == "payload_too_large"
        (status, _, _), _ = send_chunked(
            server,
            "/storage/upload/initiate",
            [b'{"content_type": "image/png", "pad": "'] + [b"y" * 8192] * 64 + [b'"}'],
            {**server.headers, "Content-Type": "application/json"},
        )
        assert status == 413
        ok = httpx.post(
            server.url + "/storage/upload/initiate",
            headers=server.headers,
            json={"content_type": "image/png", "file_name": "a.png"},
        )
        assert ok.status_code == 200


def test_data_uri_over_the_input_cap_is_refused_at_submit(tmp_path, photo_uri):
    cap = 1 * MIB
    big = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(cap + 10)).decode()
    with running_server(tmp_path, env={"KINEMA_FETCH_MAX_BYTES": str(cap)}) as server:
        r = httpx.post(
            server.url + ENDPOINT,
            headers=server.headers,
            timeout=30,
            json={
                "prompt": "x",
                "image_url": photo_uri,
                "static_mask_url": big,
                "dynamic_masks": [{"mask_url": big, "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}],
            },
        )
        assert r.status_code == 422, r.text
        got = {tuple(e["loc"]): e["type"] for e in r.json()["detail"]}
        assert got == {
            ("body", "static_mask_url"): "fetch_too_large",
            ("body", "dynamic_masks", 0, "mask_url"): "fetch_too_large",
        }
        # Nothing was queued.
        listed = httpx.get(server.url + "/requests", headers=server.headers).json()["requests"]
        assert listed == []
        # A data URI of exactly the cap is accepted at submit.
        exact = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(cap - 8)).decode()
        assert (
            httpx.post(
                server.url + ENDPOINT, headers=server.headers, timeout=30, json={"prompt": "x", "image_url": exact}
            ).status_code
            == 200
        )


def _nested(depth: int) -> bytes:
    return b'{"prompt": "x", "image_url": "https://example.com/a.png", "extra": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [100, 1000, 7000])  # 7000 deep is 14 KB: under the initiate cap
def test_deep_json_is_a_422_on_every_json_route(tmp_path, depth):
    with running_server(tmp_path) as server:
        for path in (ENDPOINT, "/run" + ENDPOINT, "/storage/upload/initiate"):
            r = httpx.post(
                server.url + path,
                content=_nested(depth),
                timeout=30,
                headers={**server.headers, "Content-Type": "application/json"},
            )
            assert r.status_code == 422, (path, r.status_code, r.text[:200])
            [item] = r.json()["detail"]
            assert item["type"] == "json_invalid" and item["loc"] == ["body"]
            assert "nests deeper than 64" in item["msg"]
        assert "Traceback" not in server.log_text()
        # Ordinary nesting still works.
        ok = httpx.post(
            server.url + "/storage/upload/initiate",
            headers=server.headers,
            json={"content_type": "image/png", "extra": [[[[{"a": [1]}]]]]},
        )
        assert ok.status_code == 200


def test_client_leaving_mid_body_is_one_log_line(tmp_path):
    with running_server(tmp_path) as server:
        for path in (ENDPOINT, "/files/upload"):
            sock = open_socket(server)
            sock.sendall(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {server.host_port}\r\n"
                    f"Authorization: Key {server.key}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1000000\r\n\r\n"
                ).encode()
                + b'{"prompt": "'
                + b"a" * 5000
            )
            time.sleep(0.3)
            sock.close()
        deadline = time.monotonic() + 10
        while server.log_text().count("client disconnected mid-body") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        log = server.log_text()
        lines = [line for line in log.splitlines() if "disconnect" in line.lower()]
        assert len(lines) == 2, lines
        assert "Traceback" not in log and "ClientDisconnect" not in log
        # The connection is still usable by others.
        sock = open_socket(server)
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {server.host_port}\r\n\r\n".encode())
        assert read_reply(sock)[0] == 200
        sock.close()


def test_chunked_raw_uploads_cut_off_at_the_cap(tmp_path):
    cap = 8 * MIB
    piece = b"\x89PNG\r\n\x1a\n" + bytes(MIB - 8)
    with running_server(tmp_path, env={"KINEMA_UPLOAD_MAX_BYTES": str(cap)}) as server:
        pid = server.proc.pid
        before = rss_mib(pid)
        (status, _, body), sent = send_chunked(
            server, "/files/upload", [piece] * 128, {**server.headers, "Content-Type": "image/png"}
        )
        assert status == 413, body
        assert sent < 64 * MIB
        slot = httpx.post(
            server.url + "/storage/upload/initiate",
            headers=server.headers,
            json={"content_type": "image/png", "file_name": "big.png"},
        ).json()
        path = "/" + slot["upload_url"].split("/", 3)[3]
        sock_reply, sent = send_chunked(server, path, [piece] * 128, {"Content-Type": "image/png"}, method="PUT")
        assert sock_reply[0] == 413 and sent < 64 * MIB
        assert peak_rss_mib(pid) - before < 32
        assert list((server.data_dir / "files").iterdir()) == []
