"""The Wan engine behind a real ``kinema serve`` with the official ``fal_client``, and its start-up error."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import jpeg_bytes
from server import Server, create_key, free_port, running_server, stop_server
from test_compat_python import run_client
from wan_fixtures import BASE_ENV, tiny_folders

from kinema.tls import TlsFiles, ensure_local_tls

#: One torch thread per worker (see wan_fixtures) and small clips: these servers run tiny models.
SERVER_ENV = {**BASE_ENV, "KINEMA_WAN_STEPS": "2", "OMP_NUM_THREADS": "1", "KINEMA_OUTPUT_SHORT_SIDE": "90"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random Wan I2V and FLF2V folders, written with ``save_pretrained``."""
    return tiny_folders(tmp_path_factory.mktemp("wan-models"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory, photo: Any) -> Path:
    path = tmp_path_factory.mktemp("img") / "astronaut.jpg"
    path.write_bytes(jpeg_bytes(photo))  # 512x512: the engine works at 32x32 (KINEMA_WAN_MAX_AREA=1024)
    return path


@pytest.fixture(scope="module")
def wan_server(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles, folders: dict[str, Path]) -> Iterator[Server]:
    env = {**SERVER_ENV, "KINEMA_WAN_MODEL": str(folders["i2v"]), "SSL_CERT_FILE": str(tls.ca_cert)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSL_CERT_FILE", str(tls.ca_cert))
        cm = running_server(
            tmp_path_factory.mktemp("kinema"), engine="wan", tls=(tls.cert, tls.key), env=env, ready_timeout=120
        )
        server = cm.__enter__()
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


def test_a_job_on_the_tiny_model_completes_through_fal_client(
    wan_server: Server, tls: TlsFiles, image_file: Path
) -> None:
    out = run_client(
        wan_server,
        tls,
        image_file,
        """
        handle = fal_client.submit(EP, arguments={**ARGS, "cfg_scale": 0.0, "seed": 5})
        result = handle.get()
        final = handle.status(with_logs=True)
        emit({"result": result, "final": type(final).__name__, "logs": [l["message"] for l in final.logs]})
    """,
        timeout=240,
    )
    assert out["final"] == "Completed"
    video = out["result"]["video"]
    assert video["content_type"] == "video/mp4" and video["file_size"] > 1000
    mp4 = httpx.get(video["url"], verify=ssl.create_default_context(cafile=str(tls.ca_cert)), timeout=30).content
    import io

    import av  # the clip the user downloads: 150 frames at 30 fps

    with av.open(io.BytesIO(mp4)) as box:
        stream = box.streams.video[0]
        assert (sum(1 for _ in box.decode(stream)), float(stream.average_rate)) == (150, 30.0)
    logs = out["logs"]
    assert any(m.startswith("wan: Wan 2.1 I2V") and "seed 5" in m and "guidance 1" in m for m in logs)
    # The worker writes the step progress to the log (first and last step, between them at most one a second).
    assert [m for m in logs if m.startswith("step ")] == ["step 1/2", "step 2/2"]
    assert any(m.startswith("segment 1/1") and "decode" in m for m in logs)


def test_a_missing_model_folder_is_a_clear_start_up_error_in_health(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key = create_key(data_dir)
    port = free_port()
    missing = tmp_path / "no-such-model"
    env = {**__import__("os").environ, **SERVER_ENV, "KINEMA_ENGINE": "wan", "KINEMA_WAN_MODEL": str(missing)}
    with open(data_dir / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kinema", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", key, data_dir, proc, data_dir / "server.log")
    try:
        deadline = time.monotonic() + 90
        body: dict[str, Any] = {}
        code = 0
        while time.monotonic() < deadline:
            try:
                r = httpx.get(server.url + "/health", timeout=2)
                code, body = r.status_code, r.json()
                if body.get("status") == "unavailable":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert body.get("status") == "unavailable", server.log_text()
        assert code == 503 and body["can_take_work"] is False
        assert f"KINEMA_WAN_MODEL={missing}: no such folder" in body["reason"]
        assert body["workers"][0]["state"] == "DEFUNCT"
    finally:
        stop_server(server)
