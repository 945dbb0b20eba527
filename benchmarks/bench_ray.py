"""Ray executor benchmark: extra submit → COMPLETED overhead over the SQLite single-server path.

    .venv/bin/python benchmarks/bench_ray.py [--jobs 30] [--rounds 3]

Two servers on one machine with the instant engine (16×16 clips, so the time is kinema's own):
``kinema serve`` with one local worker process (the SQLite single-server path), and
``kinema serve --executor ray`` with one engine actor on a local Ray cluster started here. Each
round runs ``--jobs`` sequential submits on each (alternating, so machine load hits both alike);
overhead = submit → the client seeing COMPLETED minus the engine's own render (its ``engine_ms=`` log).
Prints the medians and the Ray path's extra overhead (difference of the medians).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_service import overhead
from conftest import data_uri, jpeg_bytes
from server import start_server, stop_server

ENGINE = str(ROOT / "benchmarks/engines/instant.py") + ":load"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from skimage import data

    image = data_uri(jpeg_bytes(data.astronaut()), "image/jpeg")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report over the network
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kbr-", dir="/tmp") as tmp:
        ray.init(
            num_cpus=2,
            num_gpus=0,
            include_dashboard=False,
            _temp_dir=tmp + "/ray",
            log_to_driver=False,
            namespace="bench",
        )
        print(f"ray cluster started in {time.perf_counter() - t0:.1f} s")
        env = {"KINEMA_OUTPUT_SHORT_SIDE": "16"}
        local = start_server(Path(tmp) / "local", engine=ENGINE, env=env)
        on_ray = start_server(
            Path(tmp) / "ray",
            engine=ENGINE,
            workers=1,
            env={
                **env,
                "KINEMA_EXECUTOR": "ray",
                "KINEMA_RAY_ADDRESS": ray.get_runtime_context().gcs_address,
                "KINEMA_RAY_NAMESPACE": "bench-ray",
                "KINEMA_RAY_NUM_GPUS": "0",
            },
        )
        over: dict[str, list[float]] = {"local": [], "ray": []}
        totals: dict[str, list[float]] = {"local": [], "ray": []}
        try:
            asyncio.run(overhead(on_ray.url, on_ray.headers, image, 1))  # waits for the actor's engine; not counted
            for _ in range(args.rounds):
                for name, server in (("local", local), ("ray", on_ray)):
                    tot, eng = asyncio.run(overhead(server.url, server.headers, image, args.jobs))
                    totals[name] += tot
                    over[name] += [t - e for t, e in zip(tot, eng, strict=True)]
        finally:
            stop_server(on_ray)
            stop_server(local)
            ray.shutdown()
    med = {k: statistics.median(v) * 1000 for k, v in over.items()}
    for name in ("local", "ray"):
        print(
            f"{name:>5}: {len(over[name])} jobs,"
            f" median submit→COMPLETED {statistics.median(totals[name]) * 1000:.1f} ms,"
            f" median overhead {med[name]:.1f} ms"
        )
    print(
        f"Ray executor extra overhead over the SQLite single-server path: {med['ray'] - med['local']:+.1f} ms"
        f" (ratio {med['ray'] / med['local']:.2f})"
    )


if __name__ == "__main__":
    main()
