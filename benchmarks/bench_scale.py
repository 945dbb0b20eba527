"""Scale-out benchmark on a real PostgreSQL (durable defaults: fsync and synchronous_commit on).

    .venv/bin/python benchmarks/bench_scale.py [--jobs 120] [--clients 100] [--seconds 20] [--overhead-jobs 30]

1. Claims: jobs claimed (and run to SUCCEEDED) per second as ``kinema worker`` processes with the
   instant engine go 1 → 2 → 4, each count on a fresh database with ``--jobs`` jobs queued at once
   after the workers are READY; plus the store alone (``claim`` + ``complete`` with no engine) from
   1 → 2 → 4 processes, which bounds what the database itself allows.
2. Status: ``--clients`` pollers (every 0.1 s, keep-alive, as the official client) spread evenly over
   two API servers on one database; p50/p90/p99 (target p99 ≤ 50 ms).
3. Overhead: ``--overhead-jobs`` sequential submits, submit → the client sees COMPLETED minus the
   engine's own time (medians), on: SQLite, one server (the embedded default); PostgreSQL, one
   server; PostgreSQL, an API-only server + a standalone worker. Prints the extra over SQLite.

Every figure is measured in this one run, on this machine; say how loaded it was when quoting them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_service import ENDPOINT, overhead, pct, poll_load
from conftest import data_uri, jpeg_bytes
from pg import PgCluster, find_bindir, start_cluster
from scale import create_pg_key, pg_env, start_worker, stop_worker
from server import Server, start_server, stop_server

from kinema.jobs.pg_store import PgJobStore
from kinema.jobs.store import Outcome

INSTANT = str(ROOT / "benchmarks/engines/instant.py") + ":load"
#: 16x16 clips: the encoder costs next to nothing, so the figures are kinema's own.
SMALL = {"KINEMA_OUTPUT_SHORT_SIDE": "16"}
PAYLOAD = {"prompt": "x", "image_url": ""}


def _succeeded(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM jobs WHERE state = 'SUCCEEDED'").fetchone()
    return int(row[0]) if row else 0


def claims_with_workers(cluster: PgCluster, tmp: Path, image: str, workers: int, jobs: int) -> float:
    """Jobs/s through ``workers`` standalone ``kinema worker`` processes (one engine each)."""
    url = cluster.create_database()
    env = pg_env(url, tmp / f"files-{workers}", **SMALL)
    procs = [start_worker(tmp / f"w{workers}-{i}", engine=INSTANT, env=env) for i in range(workers)]
    try:
        store = PgJobStore(url, pool_size=2)
        payload = {**PAYLOAD, "image_url": image}
        t0 = time.perf_counter()
        for _ in range(jobs):
            store.submit(
                key_id="bench",
                payload=payload,
                priority=0,
                base_url="http://127.0.0.1:1",
                webhook_url=None,
                start_deadline=None,
            )
        while _succeeded(url) < jobs:
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        store.close()
    finally:
        for w in procs:
            stop_worker(w)
    return jobs / elapsed


def _store_claimer(url: str, name: str, go: Any, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = PgJobStore(url, pool_size=2)
    done = Outcome(200, {"video": None}, None, None, 0.0, 5.0)
    n = 0
    go.wait()  # every process imported and connected: start together
    t0 = time.time()  # wall clock: comparable across the processes
    while (job := store.claim(name, 30)) is not None:
        store.complete(job.id, done, worker_id=name)
        n += 1
    out.put((n, t0, time.time()))
    store.close()


def claims_store_only(cluster: PgCluster, processes: int, jobs: int) -> float:
    """Claims/s of the store alone: ``processes`` processes each looping claim → complete."""
    url = cluster.create_database()
    store = PgJobStore(url, pool_size=2)
    for _ in range(jobs):
        store.submit(
            key_id="bench", payload=PAYLOAD, priority=0, base_url="http://h", webhook_url=None, start_deadline=None
        )
    store.close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    go = ctx.Barrier(processes)
    procs = [ctx.Process(target=_store_claimer, args=(url, f"p{i}", go, out)) for i in range(processes)]
    for proc in procs:
        proc.start()
    parts = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert sum(n for n, _, _ in parts) == jobs
    # From the first claim of any process to the last completion of any (process start-up excluded).
    return jobs / (max(end for _, _, end in parts) - min(start for _, start, _ in parts))


async def _poll_two(servers: list[Server], rids: list[str], clients: int, seconds: float) -> list[float]:
    half = clients // 2
    parts = await asyncio.gather(
        poll_load(servers[0].url, servers[0].headers, rids, half, seconds),
        poll_load(servers[1].url, servers[1].headers, rids, clients - half, seconds),
    )
    return [x for part in parts for x in part]


def _overhead(server: Server, image: str, jobs: int) -> tuple[float, float]:
    totals, engine = asyncio.run(overhead(server.url, server.headers, image, jobs))
    over = [t - e for t, e in zip(totals, engine, strict=True)]
    return statistics.median(totals), statistics.median(over)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=120)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--overhead-jobs", type=int, default=30)
    args = ap.parse_args()
    from skimage import data

    bindir = find_bindir()
    if bindir is None:
        sys.exit("bench_scale needs PostgreSQL's binaries (apt-get install postgresql)")
    image = data_uri(jpeg_bytes(data.astronaut()), "image/jpeg")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    cluster = start_cluster(bindir, durable=True)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            # 1. Claims per second.
            for n in (1, 2, 4):
                rate = claims_store_only(cluster, n, 600)
                print(f"store alone, {n} process(es) claim+complete: {rate:.0f} jobs/s")
            base = 0.0
            for n in (1, 2, 4):
                rate = claims_with_workers(cluster, tmp, image, n, args.jobs)
                base = base or rate
                print(
                    f"kinema worker x{n} (instant engine, 16x16 clips), {args.jobs} jobs: {rate:.1f} jobs/s"
                    f" ({rate / base:.2f}x of one worker)"
                )

            # 2. Status p99 over two API servers on one database.
            url = cluster.create_database()
            key = create_pg_key(url)
            env = pg_env(url, tmp / "files-status", **SMALL)
            servers = [start_server(tmp / f"api-{i}", engine=INSTANT, env=env, key=key, workers=0) for i in range(2)]
            worker = start_worker(tmp / "status-worker", engine=INSTANT, env=env)
            try:
                rids = [
                    httpx.post(
                        f"{servers[i % 2].url}/{ENDPOINT}",
                        json={**PAYLOAD, "image_url": image},
                        headers=servers[0].headers,
                        timeout=30,
                    ).json()["request_id"]
                    for i in range(10)
                ]
                lat = asyncio.run(_poll_two(servers, rids, args.clients, args.seconds))
                print(
                    f"status polling, {args.clients} clients over 2 API servers on PostgreSQL every 0.1 s for"
                    f" {args.seconds:.0f} s: {len(lat)} requests, p50 {pct(lat, 0.5) * 1000:.1f} ms,"
                    f" p90 {pct(lat, 0.9) * 1000:.1f} ms, p99 {pct(lat, 0.99) * 1000:.1f} ms (target p99 ≤ 50 ms)"
                )
                lite = start_server(tmp / "sqlite-status", engine=INSTANT, env=SMALL)
                try:  # the same load on the embedded default, in the same run, for reference
                    lite_rids = [
                        httpx.post(
                            f"{lite.url}/{ENDPOINT}",
                            json={**PAYLOAD, "image_url": image},
                            headers=lite.headers,
                            timeout=30,
                        ).json()["request_id"]
                        for _ in range(10)
                    ]
                    ref = asyncio.run(poll_load(lite.url, lite.headers, lite_rids, args.clients, args.seconds))
                finally:
                    stop_server(lite)
                print(
                    f"  reference, the same {args.clients} clients on one SQLite server: {len(ref)} requests,"
                    f" p50 {pct(ref, 0.5) * 1000:.1f} ms, p90 {pct(ref, 0.9) * 1000:.1f} ms,"
                    f" p99 {pct(ref, 0.99) * 1000:.1f} ms; p99 ratio PostgreSQL/SQLite"
                    f" {pct(lat, 0.99) / pct(ref, 0.99):.2f}"
                )

                # 3. Overhead: PostgreSQL API server + standalone worker.
                pg_split = _overhead(servers[0], image, args.overhead_jobs)
            finally:
                stop_worker(worker)
                for s in servers:
                    stop_server(s)
            url = cluster.create_database()
            one = start_server(
                tmp / "pg-one", engine=INSTANT, env=pg_env(url, tmp / "files-one", **SMALL), key=create_pg_key(url)
            )
            try:
                pg_one = _overhead(one, image, args.overhead_jobs)
            finally:
                stop_server(one)
            lite = start_server(tmp / "sqlite-one", engine=INSTANT, env=SMALL)
            try:
                sqlite_one = _overhead(lite, image, args.overhead_jobs)
            finally:
                stop_server(lite)
            print(f"submit→COMPLETED over {args.overhead_jobs} jobs (medians: total / overhead beyond the engine):")
            print(f"  SQLite, one server:                 {sqlite_one[0] * 1000:6.1f} / {sqlite_one[1] * 1000:6.1f} ms")
            for label, (total, over) in (
                ("PostgreSQL, one server:", pg_one),
                ("PostgreSQL, API server + worker:", pg_split),
            ):
                print(
                    f"  {label:<35}{total * 1000:6.1f} / {over * 1000:6.1f} ms"
                    f"  (extra over SQLite: {(over - sqlite_one[1]) * 1000:+.1f} ms)"
                )
    finally:
        cluster.stop("fast")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
