"""``kinema keys`` and ``kinema tls`` as a user runs them: labels, mistyped data dirs, one first key, and the
serve line ``kinema tls`` prints (run as printed)."""

from __future__ import annotations

import os
import shlex
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server import ROOT, free_port
from test_cli_generate import one_error_line


def kinema(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KINEMA_DATA_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "kinema", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(cwd or ROOT),
        env=env,
    )


def listed(data_dir: Path) -> list[list[str]]:
    proc = kinema("keys", "list", "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines()]


def test_labels_are_listed_and_revoke_removes_the_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = kinema("keys", "create", "--data-dir", str(data), "--label", "laptop")
    second = kinema("keys", "create", "--data-dir", str(data))
    assert first.returncode == 0 and second.returncode == 0
    id1, id2 = (p.stdout.strip().splitlines()[-1].split(":")[0] for p in (first, second))
    rows = listed(data)
    assert [(r[0], r[2]) for r in rows] == [(id1, "laptop"), (id2, "")]
    assert time.strptime(rows[0][1], "%Y-%m-%d %H:%M:%S")  # a readable creation time
    assert kinema("keys", "revoke", id1, "--data-dir", str(data)).returncode == 0
    assert [r[0] for r in listed(data)] == [id2]


@pytest.mark.parametrize("command", [["list"], ["revoke", "0123456789abcdef"]])
def test_a_mistyped_data_dir_is_not_created(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "kinema-dta"
    proc = kinema("keys", *command, "--data-dir", str(typo))
    assert proc.returncode == 2
    assert one_error_line(proc.stderr).startswith(f"{typo} does not exist")
    assert not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = kinema("keys", *command, "--data-dir", str(empty))
    assert proc.returncode == 2
    assert one_error_line(proc.stderr).startswith(f"{empty} has no key store")
    assert list(empty.iterdir()) == []


def test_create_if_none_makes_one_key_however_often_it_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = kinema("keys", "create", "--if-none", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    key_id = first.stdout.strip().splitlines()[-1].split(":")[0]
    again = kinema("keys", "create", "--if-none", "--data-dir", str(data))
    assert again.returncode == 0  # so "keys create --if-none && kinema serve" still serves
    assert key_id in again.stdout and "No key created" in again.stdout
    assert [r[0] for r in listed(data)] == [key_id]


def test_tls_prints_a_serve_line_that_serves_the_same_data_dir(tmp_path: Path) -> None:
    """Run the printed ``kinema serve`` line as is (plus a free port): it serves HTTPS with the certificate,
    and a key made in the ``--data-dir`` given to ``kinema tls`` is accepted, so it is the same store."""
    data = "my data"  # relative and with a space: the printed line must quote it
    key = kinema("keys", "create", "--data-dir", data, cwd=tmp_path).stdout.strip().splitlines()[-1]
    proc = kinema("tls", "--data-dir", data, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    serve = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("kinema serve ")]
    assert len(serve) == 1 and f"--data-dir '{data}'" in serve[0]
    port = free_port()
    argv = [sys.executable, "-m", *shlex.split(serve[0]), "--port", str(port)]
    env = {**os.environ, "KINEMA_ENGINE": f"{ROOT}/tests/engines/trivial.py:render"}
    env.pop("KINEMA_DATA_DIR", None)
    server = subprocess.Popen(
        argv, cwd=str(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        verify = ssl.create_default_context(cafile=str(tmp_path / data / "tls" / "ca.pem"))
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(
                    f"https://localhost:{port}/usage", headers={"Authorization": f"Key {key}"}, verify=verify, timeout=2
                )
                break
            except httpx.ConnectError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200, r.text
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
