"""``kinema status|result|cancel`` against a real kinema server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import data_uri, png_bytes
from queueclient import submit, wait_status
from server import free_port, running_server
from test_cli_generate import FRAME_SIZE, cli_env, one_error_line, run_cli, write_photo

from kinema.media.encode import read_frames


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("srv"), engine="tests/engines/cli_fixture.py:render") as s:
        yield s


@pytest.fixture(scope="module")
def image_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = write_photo(tmp_path_factory.mktemp("img") / "a.png")
    return data_uri(path.read_bytes())


def _submit(server, image_uri: str, prompt: str) -> str:
    r = submit(server, {"prompt": prompt, "image_url": image_uri})
    assert r.status_code == 200, r.text
    return r.json()["request_id"]


def _args(server, *args: str) -> list[str]:
    return [*args, "--server", server.url, "--key", server.key]


def test_status_and_result_of_a_finished_request(tmp_path: Path, server, image_uri: str) -> None:
    rid = _submit(server, image_uri, "finished")
    wait_status(server, rid, "COMPLETED")

    proc = run_cli(*_args(server, "status", rid))
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["status"] == "COMPLETED" and body["request_id"] == rid
    assert any("cli fixture engine" in entry["message"] for entry in body["logs"])
    proc = run_cli(*_args(server, "status", rid, "--no-logs"))
    assert json.loads(proc.stdout)["logs"] is None

    proc = run_cli(*_args(server, "result", rid))
    assert proc.returncode == 0, proc.stderr
    output = json.loads(proc.stdout)
    assert output["video"]["url"].startswith(server.url + "/files/")
    assert output["video"]["content_type"] == "video/mp4"

    out = tmp_path / "r.mp4"
    proc = run_cli(*_args(server, "result", rid, "--out", str(out)))
    assert proc.returncode == 0, proc.stderr
    assert read_frames(out).shape == (150, *FRAME_SIZE, 3)
    assert proc.stdout.startswith(str(out))


def test_env_server_and_key(server, image_uri: str) -> None:
    rid = _submit(server, image_uri, "by env")
    proc = run_cli("status", rid, env=cli_env(KINEMA_SERVER=server.url, KINEMA_KEY=server.key))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["request_id"] == rid


def test_result_before_the_end_then_wait(tmp_path: Path, server, image_uri: str) -> None:
    rid = _submit(server, image_uri, "slow result")
    proc = run_cli(*_args(server, "result", rid))
    assert proc.returncode == 2
    assert "has not finished yet" in one_error_line(proc.stderr)
    out = tmp_path / "w.mp4"
    proc = run_cli(*_args(server, "result", rid, "--wait", "--out", str(out)))
    assert proc.returncode == 0, proc.stderr
    assert read_frames(out).shape[0] == 150


def test_cancel_a_running_request(server, image_uri: str) -> None:
    rid = _submit(server, image_uri, "slow cancelled")
    wait_status(server, rid, "IN_PROGRESS")
    proc = run_cli(*_args(server, "cancel", rid))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"status": "CANCELLATION_REQUESTED"}
    wait_status(server, rid, "COMPLETED")
    proc = run_cli(*_args(server, "result", rid))
    assert proc.returncode == 2
    assert "cancelled" in one_error_line(proc.stderr).lower()
    # Cancelling again: the server says it is already completed, and the exit status says so too.
    proc = run_cli(*_args(server, "cancel", rid))
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"status": "ALREADY_COMPLETED"}


def test_remote_user_errors(server, image_uri: str) -> None:
    proc = run_cli(*_args(server, "status", "no-such-request"))
    assert proc.returncode == 2 and "no request no-such-request" in one_error_line(proc.stderr)
    proc = run_cli(*_args(server, "result", "no-such-request"))
    assert proc.returncode == 2 and "no request no-such-request" in one_error_line(proc.stderr)
    proc = run_cli(*_args(server, "cancel", "no-such-request"))
    assert proc.returncode == 1 and json.loads(proc.stdout) == {"status": "NOT_FOUND"}
    proc = run_cli("status", "x", "--server", server.url, "--key", "bad:key")
    assert proc.returncode == 2 and "refused the key (401)" in one_error_line(proc.stderr)
    proc = run_cli("status", "x", "--server", f"http://127.0.0.1:{free_port()}", "--key", "k")
    assert proc.returncode == 2 and "cannot reach the server" in one_error_line(proc.stderr)
    proc = run_cli("status", "x")
    assert proc.returncode == 2 and "no server" in one_error_line(proc.stderr)
    proc = run_cli("status", "x", "--server", "localhost:1", "--key", "k")
    assert proc.returncode == 2 and "--server must be an http:// or https:// URL" in one_error_line(proc.stderr)


def test_failed_request_result_is_named(server) -> None:
    from skimage import data

    small = data_uri(png_bytes(data.astronaut()[:200, :200]))
    r = submit(server, {"prompt": "small", "image_url": small})
    rid = r.json()["request_id"]
    wait_status(server, rid, "COMPLETED")
    proc = run_cli(*_args(server, "result", rid))
    assert proc.returncode == 2
    msg = one_error_line(proc.stderr)
    assert msg.startswith(f"request {rid} failed (422") and "body.image_url: " in msg
