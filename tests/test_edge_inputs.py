"""Input checks that need the fetched files, on a running server (issue 7, points 14, 20 and 24)."""

from __future__ import annotations

import http.server
import struct
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from conftest import data_uri, png_bytes
from edge_client import children, peak_rss_mib
from server import running_server

ENDPOINT = "/fal-ai/kling-video/v1/standard/image-to-video"


def _result(server, payload: dict) -> httpx.Response:
    sub = httpx.post(server.url + ENDPOINT, json=payload, headers=server.headers, timeout=30)
    assert sub.status_code == 200, sub.text
    deadline = time.monotonic() + 120
    while httpx.get(sub.json()["status_url"], headers=server.headers).json()["status"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return httpx.get(sub.json()["response_url"], headers=server.headers)


def _mask_uri(w: int, h: int) -> str:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2, w // 4 : w // 2] = 255
    return data_uri(png_bytes(mask))


# 14 ---------------------------------------------------------------------------------------------------------
def test_trajectory_points_must_be_pixels_of_the_image(tmp_path, photo_uri):
    mask = _mask_uri(512, 512)
    with running_server(tmp_path) as server:
        bad = _result(
            server,
            {
                "prompt": "x",
                "image_url": photo_uri,
                "dynamic_masks": [
                    {"mask_url": mask, "trajectories": [{"x": 0, "y": 0}, {"x": 512, "y": 100}, {"x": 100, "y": 512}]}
                ],
            },
        )
        assert bad.status_code == 422
        got = {tuple(e["loc"]): e["msg"] for e in bad.json()["detail"]}
        assert set(got) == {
            ("body", "dynamic_masks", 0, "trajectories", 1),
            ("body", "dynamic_masks", 0, "trajectories", 2),
        }
        assert all("x must be 0..511 and y 0..511" in msg for msg in got.values())
        corners = _result(
            server,
            {
                "prompt": "x",
                "image_url": photo_uri,
                "dynamic_masks": [{"mask_url": mask, "trajectories": [{"x": 0, "y": 0}, {"x": 511, "y": 511}]}],
            },
        )
        assert corners.status_code == 200, corners.text


# 20 ---------------------------------------------------------------------------------------------------------
class _Redirector(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        to = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["to"][0]
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_redirect_to_a_non_http_location_is_a_422(tmp_path, photo_uri, redirector):
    targets = [data_uri(b"\x89PNG\r\n\x1a\n"), "mailto:someone@example.com", "javascript:alert(1)"]
    with running_server(tmp_path, env={"KINEMA_FETCH_ALLOW": "127.0.0.1"}) as server:
        for target in targets:
            url = f"{redirector}/img.png?to={urllib.parse.quote(target, safe='')}"
            r = _result(server, {"prompt": "x", "image_url": photo_uri, "static_mask_url": url})
            assert r.status_code == 422, (target, r.status_code, r.text)
            [item] = r.json()["detail"]
            assert item["loc"] == ["body", "static_mask_url"] and item["type"] == "url_scheme"
            assert "redirected" in item["msg"]
        assert "engine_error" not in server.log_text()


# 24 ---------------------------------------------------------------------------------------------------------
def _tall_png(width: int, height: int) -> bytes:
    """A greyscale PNG of ``width`` x ``height`` black pixels, compressed row by row (never all in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    block = row * 100_000
    idat = b"".join(comp.compress(block) for _ in range(height // 100_000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_image_sides_are_checked_before_decoding(tmp_path, photo_uri):
    tall = _tall_png(1, 40_000_000)
    assert len(tall) < 200 * 1024  # about 76 KiB on the wire
    with running_server(tmp_path) as server:
        assert _result(server, {"prompt": "warm up", "image_url": photo_uri}).status_code == 200
        workers = children(server.proc.pid)
        before = {pid: peak_rss_mib(pid) for pid in workers}

        image = _result(server, {"prompt": "x", "image_url": data_uri(tall)})
        assert image.status_code == 422
        [item] = image.json()["detail"]
        assert item["loc"] == ["body", "image_url"] and item["type"] == "image_too_small"
        assert "1x40000000" in item["msg"]

        mask = _result(server, {"prompt": "x", "image_url": photo_uri, "static_mask_url": data_uri(tall)})
        assert mask.status_code == 422
        [item] = mask.json()["detail"]
        assert item["loc"] == ["body", "static_mask_url"] and item["type"] == "mask_aspect"

        growth = {pid: peak_rss_mib(pid) - before[pid] for pid in workers}
        print(f"worker peak RSS growth for two 1x40,000,000 PNGs: {growth} MiB")
        assert max(growth.values()) < 32, growth
