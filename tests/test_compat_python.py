"""The official Python ``fal_client`` (unchanged) against a live kinema over TLS on loopback.

fal_client reads ``FAL_RUN_HOST``/``FAL_QUEUE_RUN_HOST``/``FAL_KEY`` at import and always speaks https, so each
scenario runs in a fresh interpreter with that environment and ``SSL_CERT_FILE`` pointing at the local CA.
The scenario prints one JSON object on its last stdout line; the test asserts on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import jpeg_bytes
from server import Server, running_server

from kinema.tls import TlsFiles, ensure_local_tls

PRELUDE = textwrap.dedent(
    """
    import json, os, sys, threading, time
    import fal_client
    from fal_client import Completed, FalClientHTTPError, InProgress, Queued

    EP = "fal-ai/kling-video/v1/standard/image-to-video"
    IMAGE = fal_client.encode_file(os.environ["COMPAT_IMAGE"])
    ARGS = {"prompt": "the astronaut waves slowly", "image_url": IMAGE, "duration": "5"}

    def emit(obj):
        print(json.dumps(obj, default=repr), flush=True)
    """
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory, photo: Any) -> Path:
    path = tmp_path_factory.mktemp("img") / "astronaut.jpg"
    path.write_bytes(jpeg_bytes(photo))
    return path


def _server(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles, engine: str) -> Iterator[Server]:
    # start_server's readiness probe prefers os.environ's SSL_CERT_FILE (often the system bundle) over env=,
    # so point it at the local CA while the server starts.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSL_CERT_FILE", str(tls.ca_cert))
        cm = running_server(
            tmp_path_factory.mktemp("kinema"),
            engine=engine,
            tls=(tls.cert, tls.key),
            env={"SSL_CERT_FILE": str(tls.ca_cert)},
        )
        server = cm.__enter__()
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[Server]:
    yield from _server(tmp_path_factory, tls, "tests/engines/trivial.py:render")


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[Server]:
    yield from _server(tmp_path_factory, tls, "tests/engines/slow.py:render")


def run_client(
    server: Server, tls: TlsFiles, image: Path, code: str, timeout: float = 90, host: str = "localhost"
) -> Any:
    """Run ``code`` (after PRELUDE) with fal_client pointed at ``server`` by ``host``; return its last JSON line."""
    assert server.url.startswith("https://localhost:")
    host_port = f"{host}:{server.url.rsplit(':', 1)[1]}"
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and not k.startswith("FAL_")}
    env.update(
        {
            "SSL_CERT_FILE": str(tls.ca_cert),
            "FAL_RUN_HOST": f"{host_port}/run",
            "FAL_QUEUE_RUN_HOST": host_port,
            "FAL_KEY": server.key,
            "FAL_HOME_DIR": str(image.parent / "no-fal-home"),
            "COMPAT_IMAGE": str(image),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"client failed:\n{proc.stderr}\nserver log:\n{server.log_text()[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _is_video(out: dict[str, Any], server: Server, host: str = "localhost") -> None:
    video = out["video"]
    assert video["url"].startswith(server.url.replace("localhost", host, 1) + "/files/")
    assert video["content_type"] == "video/mp4" and video["file_size"] > 1000


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_run_returns_the_output(fast: Server, tls: TlsFiles, image_file: Path, host: str) -> None:
    """``run`` by host name and by IP address: the certificate covers both, URLs come back on the host used."""
    out = run_client(
        fast,
        tls,
        image_file,
        """
        emit(fal_client.run(EP, arguments=ARGS))
    """,
        host=host,
    )
    _is_video(out, fast, host)


def test_async_client_subscribe(fast: Server, tls: TlsFiles, image_file: Path) -> None:
    out = run_client(
        fast,
        tls,
        image_file,
        """
        import asyncio
        updates = []
        result = asyncio.run(fal_client.subscribe_async(EP, arguments=ARGS, with_logs=True,
                                                        on_queue_update=lambda u: updates.append(type(u).__name__)))
        emit({"result": result, "updates": updates})
    """,
    )
    _is_video(out["result"], fast)
    assert out["updates"][-1] == "Completed"


def test_submit_then_handle_status_and_get(fast: Server, tls: TlsFiles, image_file: Path) -> None:
    out = run_client(
        fast,
        tls,
        image_file,
        """
        handle = fal_client.submit(EP, arguments=ARGS)
        first = handle.status(with_logs=True)
        seen = [type(first).__name__]
        result = handle.get()
        final = handle.status(with_logs=True)
        emit({"request_id": handle.request_id, "status_url": handle.status_url, "first": seen,
              "result": result, "final": type(final).__name__, "metrics": final.metrics,
              "logs": [l["message"] for l in final.logs], "error": final.error})
    """,
    )
    assert out["status_url"] == f"{fast.url}/fal-ai/kling-video/requests/{out['request_id']}/status"
    assert out["first"][0] in {"Queued", "InProgress", "Completed"}
    _is_video(out["result"], fast)
    assert out["final"] == "Completed" and out["error"] is None
    assert out["metrics"]["inference_time"] > 0
    assert any("trivial engine" in m for m in out["logs"])


def test_status_result_cancel_by_request_id(fast: Server, tls: TlsFiles, image_file: Path) -> None:
    out = run_client(
        fast,
        tls,
        image_file,
        """
        rid = fal_client.submit(EP, arguments=ARGS).request_id
        res = fal_client.result(EP, rid)
        st = fal_client.status(EP, rid, with_logs=False)
        try:
            fal_client.cancel(EP, rid)
            cancel = None
        except FalClientHTTPError as exc:
            cancel = [exc.status_code, exc.response.json()]
        try:
            fal_client.status(EP, "0" * 32)
            missing = None
        except FalClientHTTPError as exc:
            missing = exc.status_code
        emit({"result": res, "status": type(st).__name__, "logs": st.logs, "cancel": cancel, "missing": missing})
    """,
    )
    _is_video(out["result"], fast)
    assert out["status"] == "Completed" and out["logs"] is None
    # fal answers a cancel of a finished request with 400 ALREADY_COMPLETED, which fal_client raises.
    assert out["cancel"] == [400, {"status": "ALREADY_COMPLETED"}]
    assert out["missing"] == 404


def test_validation_error_is_a_422_with_detail(fast: Server, tls: TlsFiles, image_file: Path) -> None:
    out = run_client(
        fast,
        tls,
        image_file,
        """
        try:
            fal_client.subscribe(EP, arguments={"image_url": IMAGE})
            emit({"raised": None})
        except FalClientHTTPError as exc:
            emit({"raised": type(exc).__name__, "status": exc.status_code, "message": exc.message,
                  "body": exc.response.json()})
    """,
    )
    assert out["raised"] == "FalClientHTTPError" and out["status"] == 422
    assert isinstance(out["message"], list) and out["message"] == out["body"]["detail"]
    assert ["body", "prompt"] in [d["loc"] for d in out["body"]["detail"]]


def test_input_refused_by_the_worker_surfaces_from_the_result(fast: Server, tls: TlsFiles, image_file: Path) -> None:
    """A 200x200 photo passes submit but Kling refuses sides under 300 px: the 422 comes from the result."""
    out = run_client(
        fast,
        tls,
        image_file,
        """
        from PIL import Image
        small = fal_client.encode_image(Image.open(os.environ["COMPAT_IMAGE"]).resize((200, 200)))
        handle = fal_client.submit(EP, arguments={**ARGS, "image_url": small})
        try:
            handle.get()
            emit({"raised": None})
        except FalClientHTTPError as exc:
            st = handle.status()
            emit({"raised": type(exc).__name__, "status": exc.status_code, "body": exc.response.json(),
                  "completed": type(st).__name__, "error": st.error})
    """,
    )
    assert out["raised"] == "FalClientHTTPError" and out["status"] == 422
    assert [d["loc"] for d in out["body"]["detail"]] == [["body", "image_url"]]
    assert out["completed"] == "Completed" and "300" in out["error"]


def test_subscribe_with_logs_sees_queue_progress_and_cancel(slow: Server, tls: TlsFiles, image_file: Path) -> None:
    """A blocker keeps the worker busy so the subscribed request is Queued; cancelling it lets ours run."""
    out = run_client(
        slow,
        tls,
        image_file,
        """
        blocker = fal_client.submit(EP, arguments=ARGS)
        while not isinstance(blocker.status(), InProgress):
            time.sleep(0.05)
        updates = []
        def on_update(update):
            entry = {"kind": type(update).__name__}
            if isinstance(update, Queued):
                entry["position"] = update.position
                if not any(u["kind"] == "Queued" for u in updates):
                    fal_client.cancel(EP, blocker.request_id)
            else:
                entry["logs"] = update.logs
            updates.append(entry)
        enqueued = []
        result = fal_client.subscribe(EP, arguments=ARGS, with_logs=True, on_enqueue=enqueued.append,
                                      on_queue_update=on_update)
        blocked = fal_client.status(EP, blocker.request_id)
        try:
            blocker.get()
            blocker_result = None
        except FalClientHTTPError as exc:
            blocker_result = [exc.status_code, exc.error_type]
        emit({"updates": updates, "result": result, "enqueued": enqueued,
              "blocker": {"kind": type(blocked).__name__, "error_type": blocked.error_type,
                          "error": blocked.error}, "blocker_result": blocker_result})
    """,
        timeout=120,
    )
    kinds = [u["kind"] for u in out["updates"]]
    assert len(out["enqueued"]) == 1
    assert kinds[0] == "Queued" and out["updates"][0]["position"] == 0
    assert "InProgress" in kinds and kinds[-1] == "Completed"
    assert kinds.index("InProgress") > kinds.index("Queued")
    progress_logs = [u["logs"] for u in out["updates"] if u["kind"] == "InProgress"]
    assert all(isinstance(logs, list) for logs in progress_logs)
    messages = [entry["message"] for entry in out["updates"][-1]["logs"]]
    assert any("slow engine at frame 120" in m for m in messages)
    assert any(any("slow engine at frame" in e["message"] for e in logs) for logs in progress_logs)
    for entry in out["updates"][-1]["logs"]:
        assert set(entry) >= {"message", "level", "source", "timestamp"} and entry["source"] == "USER"
    _is_video(out["result"], slow)
    assert out["blocker"]["kind"] == "Completed" and out["blocker"]["error_type"] == "request_cancelled"
    assert out["blocker_result"] == [400, "request_cancelled"]


def test_handle_cancel_while_running(slow: Server, tls: TlsFiles, image_file: Path) -> None:
    out = run_client(
        slow,
        tls,
        image_file,
        """
        handle = fal_client.submit(EP, arguments=ARGS)
        while not isinstance(handle.status(), InProgress):
            time.sleep(0.05)
        handle.cancel()
        while not isinstance(st := handle.status(), Completed):
            time.sleep(0.05)
        try:
            handle.get()
            result = None
        except FalClientHTTPError as exc:
            result = [exc.status_code, exc.error_type]
        emit({"error_type": st.error_type, "result": result})
    """,
    )
    assert out == {"error_type": "request_cancelled", "result": [400, "request_cancelled"]}
