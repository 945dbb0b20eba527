"""The Ray executor through a real ``kinema serve --executor ray`` on a local Ray cluster (one per session).

Jobs run in the engine actors (counted by a marking engine that writes its pid), logs and progress reach
the store, a cancel stops a running job within a few frames, and an actor killed mid-job is restarted by
Ray while its job is re-queued after its lease and completes, ending exactly once (one webhook, one
billed clip).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto_s3 import MotoS3, s3  # noqa: F401  (the session fixture)
from queueclient import cancel, result, status, submit, wait_status
from ray_cluster import RayCluster, ray_cluster  # noqa: F401  (the session fixture)
from receiver import Receiver
from scale import create_pg_key
from server import ROOT, Server, running_server

from kinema.media.encode import read_frames

ENGINE = "tests/engines/ray_paced.py:load"
_namespaces = itertools.count()


def _env(ray_cluster: RayCluster, runs: Path, namespace: str, **extra: str) -> dict[str, str]:  # noqa: F811
    return {
        "KINEMA_EXECUTOR": "ray",
        "KINEMA_RAY_ADDRESS": ray_cluster.address,
        "KINEMA_RAY_NAMESPACE": namespace,
        "KINEMA_RAY_NUM_CPUS": "1",
        "KINEMA_RAY_NUM_GPUS": "0",
        "KINEMA_TEST_RUNS": str(runs),
        "KINEMA_WEBHOOK_ALLOW_PRIVATE": "1",
        **extra,
    }


def _runs(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(line.split()[0], int(line.split()[1])) for line in path.read_text().splitlines() if line.strip()]


def _actor_infos(ray_cluster: RayCluster, namespace: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:  # noqa: F811
    """Every actor's ``info()``, once each has loaded its engine."""
    import ray

    deadline = time.monotonic() + timeout
    while True:
        try:
            return [ray.get(ray_cluster.actor(namespace, i).info.remote(), timeout=10) for i in range(count)]
        except (ValueError, ray.exceptions.RayError):  # not created yet / still loading or restarting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_run_started(runs: Path, prompt: str, count: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for p, _ in _runs(runs) if p == prompt) < count:
        assert time.monotonic() < deadline, f"{prompt} did not start {count} time(s): {_runs(runs)}"
        time.sleep(0.05)


def _ns() -> str:
    return f"kinema-test-{int(time.time())}-{next(_namespaces)}"


def test_jobs_run_in_the_actors_with_logs_progress_and_cancel(
    ray_cluster: RayCluster,  # noqa: F811
    tmp_path: Path,
    photo_uri: str,
) -> None:
    runs, ns = tmp_path / "runs.txt", _ns()
    with running_server(tmp_path, engine=ENGINE, workers=2, env=_env(ray_cluster, runs, ns)) as server:
        infos = _actor_infos(ray_cluster, ns, 2)
        actor_pids = {info["pid"] for info in infos}
        assert server.proc.pid not in actor_pids and len(actor_pids) == 2

        rids = {
            f"job{i}": submit(server, {"prompt": f"job{i}", "image_url": photo_uri}).json()["request_id"]
            for i in range(6)
        }
        for rid in rids.values():
            wait_status(server, rid, "COMPLETED", timeout=90)
        # Each ran once, in an actor process (never in the server, which has no engine worker).
        counted = Counter(p for p, _ in _runs(runs))
        assert counted == Counter(rids.keys())
        assert {pid for _, pid in _runs(runs)} <= actor_pids
        body = status(server, rids["job0"]).json()
        messages = [entry["message"] for entry in body["logs"]]
        assert any("in Ray actor" in m and "loaded once" in m for m in messages), messages
        assert any(m.startswith("encode frame 150/150") for m in messages), messages
        video = result(server, rids["job0"]).json()["video"]
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(httpx.get(video["url"]).content)
        assert read_frames(clip).shape == (150, 90, 90, 3)

        # Cancel reaches the actor within a few frames (0.1 s each; the whole run would take 15 s).
        rid = submit(server, {"prompt": "slow-cancelled", "image_url": photo_uri}).json()["request_id"]
        _wait_run_started(runs, "slow-cancelled")
        time.sleep(0.5)
        progress = status(server, rid).json()
        assert progress["status"] == "IN_PROGRESS"
        t0 = time.monotonic()
        assert cancel(server, rid).status_code == 202
        wait_status(server, rid, "COMPLETED", timeout=30)
        took = time.monotonic() - t0
        res = result(server, rid)
        assert res.status_code == 400 and "cancel" in res.text.lower()
        assert took < 5.0, f"the cancel took {took:.2f} s to stop the job"
        logs = [e["message"] for e in status(server, rid).json()["logs"]]
        render_steps = [int(re.search(r"(\d+)/150", m).group(1)) for m in logs if re.match(r"render .*\d+/150", m)]
        assert render_steps and max(render_steps) < 150, logs  # stopped mid-run


def test_an_actor_killed_mid_job_is_restarted_and_the_job_ends_once(
    ray_cluster: RayCluster,  # noqa: F811
    tmp_path: Path,
    photo_uri: str,
) -> None:
    import ray

    runs, ns = tmp_path / "runs.txt", _ns()
    env = _env(ray_cluster, runs, ns, KINEMA_LEASE_S="3", KINEMA_TEST_SLOW_FRAME_S="0.03")
    hook = Receiver()
    with running_server(tmp_path, engine=ENGINE, workers=2, env=env) as server:
        before = {info["worker"]: info for info in _actor_infos(ray_cluster, ns, 2)}
        rid = submit(
            server, {"prompt": "slow-victim", "image_url": photo_uri}, params={"fal_webhook": hook.url}
        ).json()["request_id"]
        _wait_run_started(runs, "slow-victim")
        victim_pid = _runs(runs)[0][1]
        index = next(i for i, info in enumerate(before.values()) if info["pid"] == victim_pid)
        ray.kill(ray_cluster.actor(ns, index), no_restart=False)  # the process dies; Ray restarts the actor

        wait_status(server, rid, "COMPLETED", timeout=120)
        res = result(server, rid)
        assert res.status_code == 200, res.text
        # Ran twice (killed once), completed once: one terminal outcome, one webhook, one clip billed.
        victims = [pid for p, pid in _runs(runs) if p == "slow-victim"]
        assert len(victims) == 2 and victims[0] == victim_pid and victims[1] != victim_pid
        usage = httpx.get(server.url + "/usage", headers=server.headers).json()
        assert usage["requests"] == 1 and usage["billed_seconds"] == pytest.approx(5.0), usage
        deadline = time.monotonic() + 30
        while not hook.received and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a second delivery would have arrived by now
        deliveries = [json.loads(body) for _, body in hook.received]
        assert [d["request_id"] for d in deliveries] == [rid] and deliveries[0]["status"] == "OK"
        logs = [e["message"] for e in status(server, rid).json()["logs"]]
        assert sum("loaded once" in m for m in logs) == 2  # one line per run, from each actor

        # Ray restarted the killed actor: a new process with the engine loaded again, taking jobs.
        after = _actor_infos(ray_cluster, ns, 2)
        assert after[index]["pid"] != victim_pid and after[index]["worker"] not in before
        again = submit(server, {"prompt": "after-restart", "image_url": photo_uri}).json()["request_id"]
        wait_status(server, again, "COMPLETED", timeout=60)
        assert result(server, again).status_code == 200
    hook.close()


def _server_log(server: Server) -> str:  # for failure messages
    return server.log_text()[-4000:]


def test_kinema_ray_runs_the_actors_for_an_api_only_server(
    ray_cluster: RayCluster,  # noqa: F811
    s3: MotoS3,  # noqa: F811
    pg_url: str,
    tmp_path: Path,
    photo_uri: str,
) -> None:
    """The KubeRay shape on one machine: ``kinema ray`` + ``kinema serve --workers 0`` on PostgreSQL, files in S3
    (the actors claim from PostgreSQL and write the outputs to the bucket)."""
    import ray

    runs, ns = tmp_path / "runs.txt", _ns()
    data = tmp_path / "kinema-data"
    shared = {**s3.env("kinema-ray", "out"), "KINEMA_DATABASE_URL": pg_url}
    env = {**os.environ, **_env(ray_cluster, runs, ns), **shared, "KINEMA_OUTPUT_SHORT_SIDE": "90"}
    with running_server(
        tmp_path,
        data_dir=data,
        engine=ENGINE,
        workers=0,
        key=create_pg_key(pg_url),
        env={"KINEMA_TEST_RUNS": str(runs), **shared},
    ) as server:
        log_path = tmp_path / "kinema-ray.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kinema",
                    "ray",
                    "--actors",
                    "1",
                    "--data-dir",
                    str(data),
                    "--engine",
                    str(ROOT / ENGINE.split(":")[0]) + ":load",
                ],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=str(ROOT),
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 90
            while "actor(s) ready" not in log_path.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
                time.sleep(0.2)
            actor_pid = ray.get(ray_cluster.actor(ns, 0).info.remote(), timeout=30)["pid"]
            rids = [
                submit(server, {"prompt": f"cli{i}", "image_url": photo_uri}).json()["request_id"] for i in range(3)
            ]
            for rid in rids:
                wait_status(server, rid, "COMPLETED", timeout=60)
                assert result(server, rid).status_code == 200
            assert sorted(_runs(runs)) == [(f"cli{i}", actor_pid) for i in range(3)]
            video = result(server, rids[0]).json()["video"]
            file_id, name = video["url"].split("/files/", 1)[1].split("/")
            assert f"out/{file_id}/{name}" in s3.keys("kinema-ray")  # written to the bucket by the actor
            clip = tmp_path / "clip.mp4"
            clip.write_bytes(httpx.get(video["url"]).content)  # streamed from the bucket by the API server
            assert read_frames(clip).shape == (150, 90, 90, 3)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        assert code == 0, log_path.read_text(errors="replace")
        with pytest.raises(ValueError):  # the actors went with their executor
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                ray.get(ray_cluster.actor(ns, 0).info.remote(), timeout=5)
                time.sleep(0.2)
