"""Engine lifecycle: an engine that takes 5 s to load and 0.2 s per clip, 20 queued jobs, one worker.

The engine loads once per worker, before it takes work, so the 20 jobs should take about
5 s + 20 x 0.2 s = 9 s (loading per job would take 20 x 5.2 s = 104 s). Runs the real dispatcher,
worker process, pipeline (16x16 output clips, so encoding costs ~nothing) and SQLite store; no HTTP.
Prints the wall time from starting the dispatcher to the last job's completion and its ratio to the
ideal (1.0 = no overhead). Median of ``--runs`` runs.

    .venv/bin/python benchmarks/bench_engine_load.py [--jobs 20] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "engines"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import data_uri, jpeg_bytes
from slow_load import LOAD_S, RENDER_S

from kinema.jobs.dispatcher import Dispatcher
from kinema.jobs.feed import ChangeFeed
from kinema.jobs.sqlite_store import SqliteJobStore
from kinema.jobs.states import JobState
from kinema.media.storage import open_storage
from kinema.settings import Settings


async def one_run(data_dir: Path, image: str, jobs: int) -> tuple[float, int]:
    settings = Settings(
        data_dir=data_dir, engine=f"{ROOT / 'benchmarks/engines/slow_load.py'}:load", output_short_side=16, workers=1
    )
    data_dir.mkdir(parents=True)
    store = SqliteJobStore(settings.db_path)
    ids = [
        store.submit(
            key_id="bench",
            payload={"prompt": "x", "image_url": image},
            priority=0,
            base_url="http://127.0.0.1:9",
            webhook_url=None,
            start_deadline=None,
        ).id
        for _ in range(jobs)
    ]
    feed = ChangeFeed(store)
    await feed.start()
    dispatcher = Dispatcher(settings, store, feed, open_storage(settings))
    t0 = time.perf_counter()
    await dispatcher.start()
    try:
        while True:
            done = [store.get(rid) for rid in ids]
            if all(j is not None and j.state.terminal for j in done):
                break
            await asyncio.sleep(0.02)
        wall = time.perf_counter() - t0
        ok = sum(1 for j in done if j is not None and j.state is JobState.SUCCEEDED)
    finally:
        await dispatcher.stop()
        await feed.stop()
        store.close()
    return wall, ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    from skimage import data

    image = data_uri(jpeg_bytes(data.astronaut()[:320, :320]), "image/jpeg")
    ideal = LOAD_S + args.jobs * RENDER_S
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            wall, ok = asyncio.run(one_run(Path(tmp) / f"data-{run}", image, args.jobs))
            if ok != args.jobs:
                raise SystemExit(f"only {ok} of {args.jobs} jobs succeeded")
            walls.append(wall)
    wall = statistics.median(walls)
    print(
        f"{args.jobs} queued jobs on one worker, engine load {LOAD_S:.0f} s + {RENDER_S:.1f} s per clip: "
        f"{wall:.2f} s (median of {args.runs}); ideal {ideal:.1f} s; ratio {wall / ideal:.2f} "
        f"(loading per job would be {args.jobs * (LOAD_S + RENDER_S) / ideal:.1f})"
    )


if __name__ == "__main__":
    main()
