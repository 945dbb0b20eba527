"""Service benchmark: status latency under polling load, and submit → COMPLETED overhead.

    .venv/bin/python benchmarks/bench_service.py [--clients 100] [--seconds 20] [--jobs 30]

1. ``--clients`` concurrent clients each poll one request's status every 0.1 s (what the official
   Python client does) for ``--seconds``; prints p50/p90/p99 latency. The load runs in a separate
   process from the server, on the same machine.
2. ``--jobs`` sequential submits with a 16×16 instant engine; overhead = wall time from submit to
   the client seeing COMPLETED minus the render's own time (engine + encoder, from the pipeline's
   "done: … (render X ms)" log line); prints the median.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import data_uri, jpeg_bytes
from server import start_server, stop_server

ENDPOINT = "fal-ai/kling-video/v1/standard/image-to-video"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 GET on a raw connection; returns the status code after reading the body."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    length = next(int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return code


async def poll_load(url: str, headers: dict[str, str], rids: list[str], clients: int, seconds: float) -> list[float]:
    """``clients`` keep-alive connections, each polling one status every 0.1 s.

    The load uses raw asyncio streams rather than an HTTP client library so that, on a 2-core
    machine shared with the server, the measurement is not dominated by the client's own CPU cost.
    """
    host, port = url.split("//", 1)[1].split(":")
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def one(i: int) -> None:
        path = f"/fal-ai/kling-video/requests/{rids[i % len(rids)]}/status?logs=true"
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
        reader, writer = await asyncio.open_connection(host, int(port))
        await asyncio.sleep(0.1 * i / clients)  # spread the clients over one period
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                code = await _get(reader, writer, request)
                lat.append(time.perf_counter() - t0)
                assert code in (200, 202), code
                await asyncio.sleep(0.1)
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    return lat


async def overhead(url: str, headers: dict[str, str], image: str, jobs: int) -> tuple[list[float], list[float]]:
    totals, engine = [], []
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        for _ in range(jobs):
            t0 = time.perf_counter()
            r = await client.post(f"{url}/{ENDPOINT}", json={"prompt": "x", "image_url": image})
            rid = r.json()["request_id"]
            while True:
                s = (await client.get(f"{url}/fal-ai/kling-video/requests/{rid}/status", params={"logs": "1"})).json()
                if s["status"] == "COMPLETED":
                    break
                await asyncio.sleep(0.002)
            totals.append(time.perf_counter() - t0)
            # The render's own cost (engine + encoder), from the pipeline's last log line.
            ms = [float(m.group(1)) for e in s["logs"] if (m := RENDER_MS.search(e["message"]))]
            engine.append(ms[0] / 1000)
    return totals, engine


RENDER_MS = re.compile(r"^done: .*\(render ([0-9.]+) ms\)$")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--jobs", type=int, default=30)
    args = ap.parse_args()
    from skimage import data

    image = data_uri(jpeg_bytes(data.astronaut()), "image/jpeg")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            Path(tmp) / "data",
            engine=str(ROOT / "benchmarks/engines/instant.py") + ":load",
            env={"KINEMA_OUTPUT_SHORT_SIDE": "16"},
        )  # 16x16 clips: the encoder costs ~nothing
        try:
            headers = server.headers
            # Overhead first, on an idle server.
            totals, engine = asyncio.run(overhead(server.url, headers, image, args.jobs))
            over = [t - e for t, e in zip(totals, engine, strict=True)]
            print(
                f"submit→COMPLETED over {args.jobs} jobs: median total {statistics.median(totals) * 1000:.1f} ms, "
                f"median engine {statistics.median(engine) * 1000:.1f} ms, "
                f"median overhead {statistics.median(over) * 1000:.1f} ms (target ≤ 100 ms)"
            )
            rids = [
                httpx.post(
                    f"{server.url}/{ENDPOINT}", json={"prompt": "x", "image_url": image}, headers=headers
                ).json()["request_id"]
                for _ in range(10)
            ]
            lat = asyncio.run(poll_load(server.url, headers, rids, args.clients, args.seconds))
            print(
                f"status polling: {args.clients} clients every 0.1 s for {args.seconds:.0f} s: {len(lat)} requests "
                f"({len(lat) / args.seconds:.0f}/s), p50 {pct(lat, 0.5) * 1000:.1f} ms, "
                f"p90 {pct(lat, 0.9) * 1000:.1f} ms, p99 {pct(lat, 0.99) * 1000:.1f} ms (target p99 ≤ 50 ms)"
            )
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
