"""The official ``@fal-ai/client`` (tests/js, pinned 1.10.1) against a live kinema, redirected with
``fal.config({credentials, requestMiddleware})`` only. Each scenario is a node script in tests/js that prints
one JSON line; these tests assert on it.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from conftest import jpeg_bytes
from server import ROOT, Server, running_server

from kinema.tls import TlsFiles, ensure_local_tls

JS_DIR = ROOT / "tests" / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(NODE is None, reason="node (>= 18) is not installed; the JS client tests need it")


@pytest.fixture(scope="module", autouse=True)
def node_modules() -> None:
    if (JS_DIR / "node_modules" / "@fal-ai" / "client" / "package.json").exists():
        return
    assert NPM is not None, "node is installed but npm is not: cannot install tests/js dependencies"
    subprocess.run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR, check=True, timeout=300)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory, photo: Any) -> Path:
    path = tmp_path_factory.mktemp("img") / "astronaut.jpg"
    path.write_bytes(jpeg_bytes(photo))
    # Below Kling's 300 px minimum side: passes submit, refused by the worker.
    path.with_name("small.jpg").write_bytes(jpeg_bytes(cv2.resize(photo, (200, 200), interpolation=cv2.INTER_AREA)))
    return path


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("kinema"), engine="tests/engines/trivial.py:render") as s:
        yield s


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("kinema"), engine="tests/engines/slow.py:render") as s:
        yield s


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def fast_tls(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[Server]:
    """The trivial engine over HTTPS with the local CA (as ``kinema tls`` sets it up)."""
    # start_server's readiness probe prefers os.environ's SSL_CERT_FILE over env=; point it at the local CA.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSL_CERT_FILE", str(tls.ca_cert))
        cm = running_server(
            tmp_path_factory.mktemp("kinema"), engine="tests/engines/trivial.py:render", tls=(tls.cert, tls.key)
        )
        server = cm.__enter__()
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


def run_node(
    server: Server, image: Path, script: str, *args: str, timeout: float = 90, extra_ca: Path | None = None
) -> dict[str, Any]:
    env = {
        k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and not k.startswith(("FAL_", "NODE_"))
    }
    env.update(
        {
            "KINEMA_URL": server.url,
            "KINEMA_KEY": server.key,
            "COMPAT_IMAGE": str(image),
            "COMPAT_SMALL_IMAGE": str(image.with_name("small.jpg")),
        }
    )
    if extra_ca is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(extra_ca)
    proc = subprocess.run(
        [NODE or "node", script, *args], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stderr}\nserver log:\n{server.log_text()[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sent"], "the client sent nothing through requestMiddleware"
    assert all(line.split(" ", 1)[1].startswith(server.url + "/") for line in out["sent"])
    return out


def _is_video(data: dict[str, Any], server: Server) -> None:
    assert data["video"]["url"].startswith(server.url + "/files/")
    assert data["video"]["content_type"] == "video/mp4" and data["video"]["file_size"] > 1000


def test_run(fast: Server, image_file: Path) -> None:
    out = run_node(fast, image_file, "run.mjs")
    _is_video(out["data"], fast)
    assert out["requestId"]
    assert out["sent"] == [f"POST {fast.url}/run/fal-ai/kling-video/v1/standard/image-to-video"]


def test_queue_submit_status_result_cancel(fast: Server, image_file: Path) -> None:
    out = run_node(fast, image_file, "queue.mjs")
    rid = out["submitted"]["request_id"]
    assert out["submitted"]["status"] == "IN_QUEUE"
    assert out["first"]["status"] in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    assert out["final"]["status"] == "COMPLETED" and out["final"]["request_id"] == rid
    assert any("trivial engine" in entry["message"] for entry in out["final"]["logs"])
    _is_video(out["result"]["data"], fast)
    assert out["result"]["requestId"] == rid
    # Cancelling a finished request: fal's 400 ALREADY_COMPLETED, which the client raises as ApiError.
    assert out["cancelDone"]["name"] == "ApiError" and out["cancelDone"]["status"] == 400
    assert out["cancelDone"]["body"] == {"status": "ALREADY_COMPLETED"}
    assert out["unknown"]["name"] == "ApiError" and out["unknown"]["status"] == 404
    assert f"GET {fast.url}/fal-ai/kling-video/requests/{rid}/status?logs=1" in out["sent"]
    assert f"PUT {fast.url}/fal-ai/kling-video/requests/{rid}/cancel" in out["sent"]


def test_validation_errors(fast: Server, image_file: Path) -> None:
    out = run_node(fast, image_file, "validation.mjs")
    for err in (out["atSubmit"], out["atResult"]):
        assert err["name"] == "ValidationError" and err["isApiError"] and err["status"] == 422
        assert err["requestId"]
    assert ["body", "prompt"] in [e["loc"] for e in out["atSubmit"]["fieldErrors"]]
    assert len(out["atSubmit"]["promptErrors"]) == 1
    # The 200x200 photo is accepted at submit and refused by the worker; subscribe's result GET raises it.
    assert [e["loc"] for e in out["atResult"]["fieldErrors"]] == [["body", "image_url"]]


def test_cancel_running_request(slow: Server, image_file: Path) -> None:
    out = run_node(slow, image_file, "cancel.mjs")
    assert out["after"]["status"] == "COMPLETED" and out["after"]["error_type"] == "request_cancelled"
    assert out["result"]["name"] == "ApiError" and out["result"]["status"] == 400
    assert out["result"]["body"]["error_type"] == "request_cancelled"


@pytest.mark.parametrize("mode", ["polling", "streaming"])
def test_subscribe_with_logs(slow: Server, image_file: Path, mode: str) -> None:
    out = run_node(slow, image_file, "subscribe.mjs", mode, timeout=120)
    updates = out["updates"]
    statuses = [u["status"] for u in updates]
    assert out["enqueued"] == out["result"]["requestId"]
    assert statuses[0] == "IN_QUEUE" and updates[0]["queue_position"] == 0
    assert "IN_PROGRESS" in statuses and statuses[-1] == "COMPLETED"
    assert statuses.index("IN_PROGRESS") > statuses.index("IN_QUEUE")
    _is_video(out["result"]["data"], slow)
    # What the client shows at the end (accumulated in streaming mode) is exactly the server's full log.
    assert updates[-1]["logs"] == out["fullLogs"]
    assert any("slow engine at frame 120" in m for m in out["fullLogs"])
    assert any(u["status"] == "IN_PROGRESS" and any("slow engine" in m for m in u["logs"] or []) for u in updates)
    assert set(updates[-1]["log_keys"]) >= {"level", "message", "source", "timestamp"}
    assert out["blockerStatus"]["status"] == "COMPLETED"
    assert out["blockerStatus"]["error_type"] == "request_cancelled"
    # Until subscribe fetched the result, it watched the request only by the stream, or only by polling.
    rid = out["result"]["requestId"]
    sent = out["sent"][: out["sent"].index(f"GET {slow.url}/fal-ai/kling-video/requests/{rid}")]
    polls = sum(f"GET {slow.url}/fal-ai/kling-video/requests/{rid}/status?logs=1" == line for line in sent)
    streams = sum(f"GET {slow.url}/fal-ai/kling-video/requests/{rid}/status/stream?logs=1" == line for line in sent)
    assert (streams, polls > 2) == ((1, False) if mode == "streaming" else (0, True))


def _check_upload(out: dict[str, Any], server: Server, image_file: Path, verify: ssl.SSLContext | bool) -> None:
    initiate = f"POST {server.url}/storage/upload/initiate?storage_type=fal-cdn-v3"
    # The named File and the Blob in run() input: one initiate each, then the run (the PUTs bypass the middleware).
    assert out["sent"] == [initiate, initiate, f"POST {server.url}/run/fal-ai/kling-video/v1/standard/image-to-video"]
    assert out["named"].startswith(server.url + "/files/") and out["named"].endswith("/astronaut_photo.jpg")
    assert out["namedDownload"] == {"status": 200, "contentType": "image/jpeg", "sameBytes": True}
    _is_video(out["data"], server)
    # The run's input is the client's own upload of the Blob: a kinema file URL holding the photo.
    listed = httpx.get(server.url + "/requests", headers=server.headers, verify=verify).json()["requests"]
    image_url = next(r["input"]["image_url"] for r in listed if r["request_id"] == out["requestId"])
    assert image_url.startswith(server.url + "/files/") and image_url != out["named"]
    assert httpx.get(image_url, verify=verify).content == image_file.read_bytes()


def test_storage_upload(fast: Server, image_file: Path) -> None:
    """JS uploads: initiate through the middleware, then a direct PUT to the returned upload_url."""
    _check_upload(run_node(fast, image_file, "upload.mjs"), fast, image_file, True)


def test_https_with_the_local_ca(fast_tls: Server, tls: TlsFiles, image_file: Path) -> None:
    """Over HTTPS node trusts kinema's local CA through NODE_EXTRA_CA_CERTS; the middleware is unchanged."""
    assert fast_tls.url.startswith("https://localhost:")
    out = run_node(fast_tls, image_file, "run.mjs", extra_ca=tls.ca_cert)
    _is_video(out["data"], fast_tls)
    assert out["sent"] == [f"POST {fast_tls.url}/run/fal-ai/kling-video/v1/standard/image-to-video"]
    # Uploads too: their PUT is node's own fetch, outside the middleware.
    out = run_node(fast_tls, image_file, "upload.mjs", extra_ca=tls.ca_cert)
    _check_upload(out, fast_tls, image_file, ssl.create_default_context(cafile=str(tls.ca_cert)))
    # Without the CA node refuses the certificate.
    with pytest.raises(AssertionError, match="unable to verify the first certificate"):
        run_node(fast_tls, image_file, "run.mjs")


def test_storage_upload_urls_are_one_time_and_keyed(fast: Server, image_file: Path) -> None:
    """The storage API's own rules, seen over plain HTTP: what the client relies on and what keeps it safe."""
    initiate = fast.url + "/storage/upload/initiate?storage_type=fal-cdn-v3"
    body = {"content_type": "text/plain", "file_name": "notes"}
    assert httpx.post(initiate, json=body).status_code == 401
    bad = httpx.post(initiate, json={"content_type": 7, "file_name": ["x"]}, headers=fast.headers)
    assert bad.status_code == 422
    assert [d["loc"] for d in bad.json()["detail"]] == [["body", "content_type"], ["body", "file_name"]]

    slot = httpx.post(initiate, json=body, headers=fast.headers).json()
    assert slot["upload_url"].startswith(fast.url + "/storage/upload/")
    assert slot["file_url"].startswith(fast.url + "/files/") and slot["file_url"].endswith("/notes.txt")
    assert httpx.get(slot["file_url"]).status_code == 404  # nothing there before the PUT
    put = httpx.put(slot["upload_url"], content=b"hello kinema", headers={"Content-Type": "text/plain"})
    assert put.status_code == 200 and put.json()["url"] == slot["file_url"] and put.json()["file_size"] == 12
    got = httpx.get(slot["file_url"])
    assert got.status_code == 200 and got.content == b"hello kinema"
    assert got.headers["content-type"].startswith("text/plain")
    # The token is the credential: it works once, and a made-up one not at all.
    assert httpx.put(slot["upload_url"], content=b"again").status_code == 404
    assert httpx.put(fast.url + "/storage/upload/" + "A" * 32, content=b"x").status_code == 404
    assert httpx.get(slot["file_url"]).content == b"hello kinema"

    # A type kinema has no extension for: the name is fixed at initiate, and the bytes still decide the type.
    photo = image_file.read_bytes()
    slot = httpx.post(
        initiate, json={"content_type": "application/x-unknown", "file_name": "blob"}, headers=fast.headers
    ).json()
    assert slot["file_url"].endswith("/blob.bin")
    assert httpx.put(slot["upload_url"], content=photo).json()["url"] == slot["file_url"]
    got = httpx.get(slot["file_url"])
    assert got.content == photo and got.headers["content-type"] == "image/jpeg"
