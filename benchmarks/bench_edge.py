"""Edge benchmark: memory a hostile body or image costs the server (issue 7, points 17 and 24).

    .venv/bin/python benchmarks/bench_edge.py [--body-mib 256] [--pythonpath OTHER_CHECKOUT/src]

1. A chunked JSON submit of ``--body-mib`` MiB (no Content-Length): prints the HTTP status, how many MiB the
   server read before answering, the server's peak RSS growth (VmHWM) and the database size afterwards.
2. A 1 x 40,000,000 px PNG (about 76 KiB) as the input image: prints the result status and the worker's
   peak RSS growth.

``--pythonpath`` runs the server from another checkout (e.g. ``git archive <commit> src | tar -x -C /tmp/old``)
to compare before/after on the same machine. Medians are not taken: each figure is one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import data_uri, jpeg_bytes
from edge_client import children, peak_rss_mib, rss_mib, send_chunked
from server import start_server, stop_server
from test_edge_bodies import _json_chunks
from test_edge_inputs import _tall_png

ENDPOINT = "/fal-ai/kling-video/v1/standard/image-to-video"


def _wait(server, sub: dict) -> int:
    deadline = time.monotonic() + 300
    while httpx.get(sub["status_url"], headers=server.headers).json()["status"] != "COMPLETED":
        if time.monotonic() > deadline:
            raise TimeoutError("the job did not complete")
        time.sleep(0.2)
    return httpx.get(sub["response_url"], headers=server.headers).status_code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--body-mib", type=int, default=256)
    ap.add_argument("--pythonpath", default=None)
    args = ap.parse_args()
    if args.pythonpath:
        os.environ["PYTHONPATH"] = args.pythonpath
    photo = data_uri(jpeg_bytes(np.full((512, 512, 3), 90, np.uint8)), "image/jpeg")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data", engine="benchmarks/engines/instant.py:render")
        try:
            pid = server.proc.pid
            before = rss_mib(pid)
            (status, _, _), sent = send_chunked(
                server,
                ENDPOINT,
                _json_chunks(args.body_mib * 1024 * 1024),
                {**server.headers, "Content-Type": "application/json"},
                deadline_s=600,
            )
            db = sum(p.stat().st_size for p in server.data_dir.glob("kinema.sqlite3*"))
            print(
                f"chunked {args.body_mib} MiB submit: HTTP {status}, read {sent / 2**20:.0f} MiB, "
                f"server peak RSS +{peak_rss_mib(pid) - before:.0f} MiB (from {before:.0f}), "
                f"database {db / 2**20:.1f} MiB"
            )

            sub = httpx.post(
                server.url + ENDPOINT, json={"prompt": "warm", "image_url": photo}, headers=server.headers, timeout=60
            ).json()
            _wait(server, sub)
            workers = children(pid)
            peaks = {w: peak_rss_mib(w) for w in workers}
            tall = _tall_png(1, 40_000_000)
            sub = httpx.post(
                server.url + ENDPOINT,
                json={"prompt": "x", "image_url": data_uri(tall)},
                headers=server.headers,
                timeout=60,
            ).json()
            code = _wait(server, sub)
            growth = max(peak_rss_mib(w) - peaks[w] for w in workers)
            print(f"1x40000000 PNG ({len(tall) / 1024:.0f} KiB): result HTTP {code}, worker peak RSS +{growth:.0f} MiB")
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
