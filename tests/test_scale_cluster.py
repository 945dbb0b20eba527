"""Scale-out on a real PostgreSQL: several API servers and standalone workers on one database.

Every run of the marking engine appends ``<prompt> <pid>`` to a file, so these tests count how
many times each job really ran, and on which process, instead of trusting what the servers say.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from conftest import data_uri, jpeg_bytes
from pg import PgCluster
from queueclient import OWNER_ALIAS, cancel, result, status, submit, wait_status
from scale import MARKING_ENGINE, Worker, create_pg_key, pg_env, runs, start_worker, stop_worker
from server import Server, start_server, stop_server

pytestmark = pytest.mark.timeout(600)


def _parent(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no parent for {pid}")


class Deployment:
    """API servers and workers of one deployment, stopped together."""

    def __init__(self, tmp_path: Path, url: str, **env: str):
        self.tmp = tmp_path
        self.url = url
        self.runs_file = tmp_path / "runs.txt"
        self.env = pg_env(url, tmp_path / "files", KINEMA_TEST_RUNS=str(self.runs_file), **env)
        self.key = create_pg_key(url)
        self.servers: list[Server] = []
        self.workers: list[Worker] = []

    def server(self, *, workers: int = 0) -> Server:
        data = self.tmp / f"server-{len(self.servers)}"
        s = start_server(data, engine=MARKING_ENGINE, env=self.env, key=self.key, workers=workers)
        self.servers.append(s)
        return s

    def worker(self) -> Worker:
        w = start_worker(self.tmp / f"worker-{len(self.workers)}", env=self.env)
        self.workers.append(w)
        return w

    def runs(self) -> Counter[str]:
        return runs(self.runs_file)

    def run_pids(self, prompt: str) -> list[int]:
        return [int(line.split()[1]) for line in self.runs_file.read_text().splitlines() if line.split()[0] == prompt]

    def close(self) -> None:
        for w in self.workers:
            stop_worker(w, hard=True)
        for s in self.servers:
            stop_server(s)


def _status_body(server: Server, rid: str) -> dict[str, Any] | None:
    try:
        r = status(server, rid, logs=False)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def _wait_all(servers: list[Server], ids: list[str], timeout: float) -> None:
    """Until every job is COMPLETED, asked through the servers in turn. Jobs are claimed in
    submission order, so each round walks the pending ones oldest first and stops at the first one
    not yet completed (light polling next to the workers on a 2-core machine)."""
    pending = list(ids)
    deadline = time.monotonic() + timeout
    turn = 0
    while pending and time.monotonic() < deadline:
        while pending:
            body = _status_body(servers[turn % len(servers)], pending[0])
            turn += 1
            if body is None or body["status"] != "COMPLETED":
                break
            pending.pop(0)
        if pending:
            time.sleep(0.25)
    assert not pending, f"{len(pending)} of {len(ids)} jobs did not complete in {timeout} s"


def test_two_servers_two_workers_500_jobs_from_20_clients_each_run_once(
    tmp_path: Path, pg_url: str, photo: np.ndarray
) -> None:
    # A 300x300 crop (Kling's smallest input): 500 decodes of the full 512x512 photo would only time the CPU.
    photo_uri = data_uri(jpeg_bytes(np.ascontiguousarray(photo[100:400, 100:400])), "image/jpeg")
    d = Deployment(tmp_path, pg_url, KINEMA_TEST_FRAME_S="0")
    try:
        a, b = d.server(), d.server()
        w1, w2 = d.worker(), d.worker()
        submitted: dict[str, str] = {}
        lock = threading.Lock()

        def client(c: int) -> None:
            with httpx.Client(timeout=30) as http:
                for i in range(25):
                    server = (a, b)[(c + i) % 2]
                    prompt = f"c{c}-j{i}"
                    r = http.post(
                        f"{server.url}/fal-ai/kling-video/v1/standard/image-to-video",
                        json={"prompt": prompt, "image_url": photo_uri},
                        headers=server.headers,
                    )
                    assert r.status_code == 200, r.text
                    with lock:
                        submitted[prompt] = r.json()["request_id"]

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            list(pool.map(client, range(20)))
        t1 = time.monotonic()
        assert len(submitted) == 500 and len(set(submitted.values())) == 500
        _wait_all([a, b], list(submitted.values()), timeout=400)
        print(f"500 submits in {t1 - t0:.1f} s, all completed {time.monotonic() - t0:.1f} s after the first")

        # Each job ran exactly once, by the engine, and both workers took a share.
        assert d.runs() == Counter({prompt: 1 for prompt in submitted})
        parents = Counter(_parent(pid) for prompt in submitted for pid in d.run_pids(prompt))
        assert set(parents) == {w1.proc.pid, w2.proc.pid}, parents
        # Results through either server, the same, with video files both servers serve.
        for n, rid in enumerate(submitted.values()):
            ra, rb = result(a, rid), result(b, rid)
            assert ra.status_code == rb.status_code == 200, (ra.text, rb.text)
            assert ra.json() == rb.json()
            if n % 100 == 0:
                video = httpx.get(ra.json()["video"]["url"], timeout=30)
                assert video.status_code == 200 and video.content[4:8] == b"ftyp"
                assert httpx.get(rb.json()["video"]["url"].replace(a.host_port, b.host_port)).content == video.content
        # Usage is counted once per job, whichever server asks.
        usage_a = httpx.get(f"{a.url}/usage", headers=a.headers).json()
        usage_b = httpx.get(f"{b.url}/usage", headers=b.headers).json()
        assert usage_a == usage_b and usage_a["requests"] == 500, usage_a
    finally:
        d.close()


def test_a_worker_killed_mid_job_its_job_completes_once_on_the_other(
    tmp_path: Path, pg_url: str, photo_uri: str
) -> None:
    # 150 frames x 0.05 s: 7.5 s of rendering; a 2 s lease lapses well before that.
    d = Deployment(tmp_path, pg_url, KINEMA_TEST_FRAME_S="0.05", KINEMA_LEASE_S="2")
    try:
        a = d.server()
        w1, w2 = d.worker(), d.worker()
        rid = submit(a, {"prompt": "orphan", "image_url": photo_uri}).json()["request_id"]
        deadline = time.monotonic() + 60
        while not d.runs()["orphan"] and time.monotonic() < deadline:
            time.sleep(0.05)
        first = _parent(d.run_pids("orphan")[0])
        victim, survivor = (w1, w2) if first == w1.proc.pid else (w2, w1)
        assert first == victim.proc.pid
        stop_worker(victim, hard=True)  # kill -9 the worker and its engine process mid-job
        body = wait_status(a, rid, "COMPLETED", timeout=90)
        assert "error" not in body, body
        assert result(a, rid).status_code == 200
        pids = d.run_pids("orphan")
        assert len(pids) == 2, pids  # once on the killed worker, once more on the survivor
        assert _parent(pids[1]) == survivor.proc.pid
        messages = [e["message"] for e in status(a, rid).json()["logs"]]
        assert any("lease lapsed" in m for m in messages), messages
    finally:
        d.close()


def test_any_server_answers_for_any_job_and_a_cancel_reaches_the_other_servers_worker(
    tmp_path: Path, pg_url: str, photo_uri: str
) -> None:
    d = Deployment(tmp_path, pg_url, KINEMA_TEST_FRAME_S="0.2")  # 30 s unless cancelled
    try:
        a, b = d.server(workers=1), d.server(workers=1)
        rid = submit(a, {"prompt": "long", "image_url": photo_uri}).json()["request_id"]
        deadline = time.monotonic() + 60
        while not d.runs()["long"] and time.monotonic() < deadline:
            time.sleep(0.05)
        runner = next(s for s in (a, b) if _parent(d.run_pids("long")[0]) == s.proc.pid)
        other = b if runner is a else a
        events: list[dict[str, Any]] = []

        def stream() -> None:  # the SSE stream through the server that does NOT run the job
            with httpx.stream(
                "GET",
                f"{other.url}/{OWNER_ALIAS}/requests/{rid}/status/stream",
                headers=other.headers,
                params={"logs": "1"},
                timeout=60,
            ) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))

        reader = threading.Thread(target=stream)
        reader.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        assert cancel(other, rid).status_code == 202
        body = wait_status(runner, rid, "COMPLETED", timeout=30)
        assert time.monotonic() - t0 < 15  # well before the 30 s the run would take
        assert body["error_type"] == "request_cancelled"
        reader.join(30)
        assert not reader.is_alive()
        assert events and events[0]["status"] == "IN_PROGRESS" and events[-1]["status"] == "COMPLETED"
        for server in (a, b):
            assert result(server, rid).status_code == 400
            assert cancel(server, rid).status_code == 400
        time.sleep(1.0)
        assert d.runs()["long"] == 1  # stopped, and never started again
    finally:
        d.close()


def test_postgres_restart_mid_load_loses_no_accepted_job(
    tmp_path: Path, pg_cluster: PgCluster, pg_url: str, photo_uri: str
) -> None:
    d = Deployment(tmp_path, pg_url, KINEMA_TEST_FRAME_S="0.002", KINEMA_LEASE_S="4")
    try:
        a, b = d.server(), d.server()
        d.worker()
        d.worker()
        accepted: dict[str, str] = {}
        refused = Counter[str]()
        lock = threading.Lock()
        stop = threading.Event()

        def client(c: int) -> None:
            i = 0
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    server = (a, b)[(c + i) % 2]
                    prompt = f"c{c}-j{i}"
                    try:
                        r = http.post(
                            f"{server.url}/fal-ai/kling-video/v1/standard/image-to-video",
                            json={"prompt": prompt, "image_url": photo_uri},
                            headers=server.headers,
                        )
                    except httpx.HTTPError as exc:
                        with lock:
                            refused[type(exc).__name__] += 1
                        continue
                    with lock:
                        if r.status_code == 200:
                            accepted[prompt] = r.json()["request_id"]
                            i += 1
                        else:
                            refused[str(r.status_code)] += 1
                    time.sleep(0.25)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        time.sleep(3.0)
        before = len(accepted)
        pg_cluster.restart(down_s=2.0)  # every connection cut; the database away for 2 s
        time.sleep(4.0)
        stop.set()
        for t in threads:
            t.join(60)
        assert before > 0 and len(accepted) > before, (before, len(accepted), refused)
        # While it was down, submits were refused with 503 store_unavailable (never 500), then accepted again.
        assert set(refused) <= {"503"}, refused
        print(f"accepted {len(accepted)} ({before} before the restart), refused {dict(refused)}")
        _wait_all([a, b], list(accepted.values()), timeout=240)
        for prompt, rid in accepted.items():
            r = result((a, b)[hash(prompt) % 2], rid)
            assert r.status_code == 200, (prompt, r.text)
            assert d.runs()[prompt] >= 1
        # The servers reconnected by themselves: a fresh job runs through each of them.
        for server in (a, b):
            rid = submit(server, {"prompt": f"after-{server.host_port}", "image_url": photo_uri}).json()["request_id"]
            assert wait_status(server, rid, "COMPLETED", timeout=60).get("error") is None
    finally:
        d.close()


def test_two_servers_starting_at_once_migrate_the_schema_once(tmp_path: Path, pg_url: str) -> None:
    key_env = pg_env(pg_url, tmp_path / "files")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(start_server, tmp_path / f"s{i}", env=key_env, key="none:none", workers=0) for i in range(2)
        ]
        servers = [f.result() for f in futures]
    try:
        with psycopg.connect(pg_url) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM kinema_schema ORDER BY version")]
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert versions == [1]
        assert {"jobs", "job_logs", "usage", "webhook_deliveries", "api_keys"} <= tables
        for s in servers:
            assert httpx.get(s.url + "/health").status_code == 200
    finally:
        for s in servers:
            stop_server(s)
