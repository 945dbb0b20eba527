"""Test helpers for scale-out: API servers and standalone ``kinema worker`` processes on one PostgreSQL.

key = create_pg_key(url)
server = start_server(data, env=pg_env(url, files), key=key, workers=0)
worker = start_worker(tmp_path / "w1", url, files, engine=ENGINE, env=...)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from server import ROOT, _engine_spec

__all__ = ["Worker", "create_pg_key", "pg_env", "runs", "start_worker", "stop_worker"]

#: Fixture engine that appends ``<prompt> <pid>`` to $KINEMA_TEST_RUNS at each run's first frame.
MARKING_ENGINE = "tests/engines/run_marking.py:load"


def pg_env(url: str, files: Path, **extra: str) -> dict[str, str]:
    """Environment of a server or worker of one deployment: the database and the shared files dir."""
    return {"KINEMA_DATABASE_URL": url, "KINEMA_STORAGE_URL": str(files), **extra}


def create_pg_key(url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "kinema", "keys", "create", "--database-url", url],
        check=True,
        capture_output=True,
        text=True,
        cwd=str(ROOT),
    )
    return out.stdout.strip().splitlines()[-1]


def runs(path: Path) -> Counter[str]:
    """How many times each prompt really ran (lines written by the marking engine)."""
    if not path.exists():
        return Counter()
    return Counter(line.split()[0] for line in path.read_text().splitlines() if line.strip())


@dataclass
class Worker:
    proc: subprocess.Popen  # type: ignore[type-arg]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_worker(
    data_dir: Path,
    *,
    engine: str = MARKING_ENGINE,
    env: dict[str, str],
    workers: int = 1,
    ready_timeout: float = 60.0,
) -> Worker:
    """``kinema worker`` in its own process group; returns once its engine processes are READY."""
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "KINEMA_OUTPUT_SHORT_SIDE": "90", **env}
    args = [
        sys.executable,
        "-m",
        "kinema",
        "worker",
        "--engine",
        _engine_spec(engine),
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
    ]
    log_path = data_dir / "worker.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            args, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True
        )
    worker = Worker(proc, log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kinema worker exited with {proc.returncode}:\n{worker.log_text()}")
        if worker.log_text().count("worker ready") >= workers:
            return worker
        time.sleep(0.1)
    stop_worker(worker, hard=True)
    raise RuntimeError(f"kinema worker did not become ready:\n{worker.log_text()}")


def stop_worker(worker: Worker, *, hard: bool = False) -> None:
    """SIGTERM (clean stop), or ``hard``: SIGKILL to the worker and its engine processes at once."""
    if worker.proc.poll() is None:
        if hard:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        else:
            worker.proc.send_signal(signal.SIGTERM)
        try:
            worker.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(timeout=5)
    if hard:
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
