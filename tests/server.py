"""A real kinema server in a subprocess on a free loopback port, for tests.

with running_server(tmp_path, engine="tests/engines/slow.py:render") as server:
    httpx.get(server.url + "/health")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
#: Output short side for servers running a fixture engine (``KINEMA_OUTPUT_SHORT_SIDE``).
FIXTURE_SHORT_SIDE = "90"

__all__ = ["Server", "running_server", "free_port", "start_server", "ROOT"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    host_port: str
    key: str
    data_dir: Path
    proc: subprocess.Popen  # type: ignore[type-arg]
    log_path: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.key}"}

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _engine_spec(engine: str) -> str:
    path, sep, fn = engine.rpartition(":")
    if path.endswith(".py") and not os.path.isabs(path):
        return f"{ROOT / path}:{fn}"
    return engine


def create_key(data_dir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "kinema", "keys", "create", "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def start_server(
    data_dir: Path,
    *,
    engine: str = "tests/engines/trivial.py:render",
    tls: tuple[Path, Path] | None = None,
    env: dict[str, str] | None = None,
    workers: int = 1,
    port: int | None = None,
    key: str | None = None,
    ready_timeout: float = 60.0,
) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    key = key or create_key(data_dir)
    port = port or free_port()
    full_env = {**os.environ, "KINEMA_ENGINE": _engine_spec(engine), **(env or {})}
    if "tests/engines/" in engine:  # fixture engines: small clips (short side 90) keep the tests fast
        full_env.setdefault("KINEMA_OUTPUT_SHORT_SIDE", FIXTURE_SHORT_SIDE)
    args = [
        sys.executable,
        "-m",
        "kinema",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
    ]
    host = "127.0.0.1"
    if tls is not None:
        args += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        host = "localhost"
    log_path = data_dir / f"server-{port}.log"
    log_file = open(log_path, "ab")
    proc = subprocess.Popen(
        args, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True
    )
    log_file.close()
    scheme = "https" if tls else "http"
    server = Server(f"{scheme}://{host}:{port}", f"{host}:{port}", key, data_dir, proc, log_path)
    deadline = time.monotonic() + ready_timeout
    verify: bool | ssl.SSLContext = True
    if tls is not None:
        cafile = (env or {}).get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_FILE")
        verify = ssl.create_default_context(cafile=cafile) if cafile else False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kinema serve exited with {proc.returncode}:\n{server.log_text()}")
        try:
            # 503: up, but no worker could load its engine (the tests of that case look at the body).
            if httpx.get(server.url + "/health", timeout=1, verify=verify).status_code in (200, 503):
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"kinema serve did not become ready:\n{server.log_text()}")


def stop_server(server: Server, *, hard: bool = False) -> None:
    """Stop the server; ``hard`` kills the whole process group with SIGKILL (server and workers)."""
    if server.proc.poll() is None:
        if hard:
            os.killpg(server.proc.pid, signal.SIGKILL)
        else:
            server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=5)
    if hard:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_server(tmp_path: Path, **kwargs: object) -> Iterator[Server]:
    data_dir = kwargs.pop("data_dir", None) or (tmp_path / "kinema-data")
    server = start_server(Path(data_dir), **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        stop_server(server)
