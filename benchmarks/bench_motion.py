"""Motion engine benchmark: render time against encode-only time, and peak memory of a 10 s clip.

    .venv/bin/python benchmarks/bench_motion.py [--runs 3]

1. (a) a 5 s 1280x720 brush clip (3 dynamic masks on curved paths + a static mask) and (b) a 5 s
   tail clip: the median of ``--runs`` full renders divided by the median time to encode the same
   frames alone (pre-built in memory) with the same encoder settings (``VideoWriter`` defaults:
   libx264 veryfast, crf 18, yuv420p). A render is what a worker does with a job's inputs:
   ``Pipeline.render`` with the motion engine (frames made ahead on a background thread, the output
   contract, the encoder).
2. The cost of building the tail clip's frames alone (no encoder), on one OpenCV thread as during a
   render: CPU time of this thread per frame (mean and median over frames 1..n-1, the median run of
   ``--runs``) and the scene setup (frame 0, which includes the analysis of the pair).
3. Peak RSS (``ru_maxrss``, and ``VmHWM``) of a fresh subprocess rendering a 10 s clip, brush and tail
   (measured first, while this process is still small: Linux carries ru_maxrss across exec).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from kinema.engines import DynamicBrush, EngineInputs
from kinema.engines.motion import MotionEngine, frames
from kinema.media.encode import VideoWriter
from kinema.pipeline import Pipeline
from kinema.settings import Settings

PIPELINE = Pipeline(Settings(), MotionEngine())


def photo() -> np.ndarray:
    """A real photograph (scikit-image's rocket) cropped to 16:9 and sized 1920x1080."""
    from skimage import data

    return cv2.resize(data.rocket()[30:390], (1920, 1080), interpolation=cv2.INTER_CUBIC)


def ellipse(shape: tuple[int, int], cx: int, cy: int, ax: int, ay: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, (cx, cy), (ax, ay), 0, 0, 360, 1, -1)
    return m.astype(bool)


def brush_inputs(duration: int = 5) -> EngineInputs:
    img = photo()
    h, w = img.shape[:2]
    static = np.zeros((h, w), bool)
    static[:, : w // 6] = True
    # Trajectories in input pixels, origin bottom-left (y up).
    brushes = (
        DynamicBrush(ellipse((h, w), 800, 600, 150, 120), ((800, 480), (900, 520), (1000, 400), (1150, 450))),
        DynamicBrush(ellipse((h, w), 1300, 400, 100, 200), ((1300, 680), (1200, 600), (1100, 700), (1000, 650))),
        DynamicBrush(ellipse((h, w), 1600, 800, 120, 100), ((1600, 280), (1650, 320), (1700, 250), (1750, 330))),
    )
    return EngineInputs(
        prompt="the rocket stands on the pad",
        image=img,
        duration_s=duration,
        static_mask=static,
        dynamic_brushes=brushes,
    )


def tail_inputs(duration: int = 5) -> EngineInputs:
    img = photo()
    h, w = img.shape[:2]
    tail = cv2.warpAffine(
        img, np.float32([[1.06, 0.0, -70.0], [0.0, 1.06, -40.0]]), (w, h), borderMode=cv2.BORDER_REFLECT_101
    )
    return EngineInputs(prompt="the camera moves closer", image=img, duration_s=duration, tail_image=tail)


def time_render(inputs: EngineInputs, out: Path) -> float:
    t = time.perf_counter()
    PIPELINE.render(inputs, out, progress=lambda _p: None, should_cancel=lambda: False, log=lambda _m: None)
    return time.perf_counter() - t


def time_encode(clip: list[np.ndarray], out: Path) -> float:
    h, w = clip[0].shape[:2]
    t = time.perf_counter()
    with VideoWriter(out, w, h, 30) as writer:
        for frame in clip:
            writer.write(frame)
    return time.perf_counter() - t


def frame_costs(inputs: EngineInputs) -> tuple[float, float, float]:
    """(setup s, mean ms, median ms per frame after the first): thread CPU time, one OpenCV thread."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        made = frames(inputs)
        start = time.thread_time()
        next(made)
        setup = time.thread_time() - start
        costs = []
        for _ in range(inputs.num_frames - 1):
            start = time.thread_time()
            next(made)
            costs.append(1000.0 * (time.thread_time() - start))
    finally:
        cv2.setNumThreads(before)
    return setup, statistics.fmean(costs), statistics.median(costs)


RSS_CHILD = """
import resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, {here!r})
import bench_motion as b
from kinema.engines.motion import render
inputs = b.{maker}(10)
with tempfile.TemporaryDirectory() as d:
    render(inputs, Path(d) / "clip.mp4", callback=lambda p: None, should_cancel=lambda: False, log=lambda m: None)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm[0] if hwm else -1)
"""


def peak_rss_mib(maker: str) -> tuple[float, float]:
    """(ru_maxrss, VmHWM) of a child rendering a 10 s clip, in MiB.

    Linux carries ru_maxrss across exec from the parent's memory at spawn, so this runs before the
    parent holds any frames; VmHWM (the child's own high-water mark) is printed as a cross-check.
    """
    code = RSS_CHILD.format(here=str(Path(__file__).resolve().parent), maker=maker)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    maxrss, hwm = out.split()[-2:]
    return int(maxrss) / 1024.0, int(hwm) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(
        f"OpenCV threads {cv2.getNumThreads()}, {args.runs} runs each, medians; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the start"
    )
    for maker in ("brush_inputs", "tail_inputs"):
        maxrss, hwm = peak_rss_mib(maker)
        print(f"10 s {maker.split('_')[0]} clip: peak RSS {maxrss:.0f} MiB (ru_maxrss), {hwm:.0f} MiB (VmHWM)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        for name, inputs in (("brush 3 dynamic + static", brush_inputs()), ("tail", tail_inputs())):
            clip = list(frames(inputs))
            encs, rens = [], []
            for _ in range(args.runs):  # interleaved, so drift in machine speed hits both alike
                encs.append(time_encode(clip, out))
                rens.append(time_render(inputs, out))
            del clip
            enc, ren = statistics.median(encs), statistics.median(rens)
            n = inputs.num_frames
            print(
                f"{name:26s} {n} frames: render {ren:.2f} s, encode only {enc:.2f} s, ratio {ren / enc:.2f}"
                f" (load average {os.getloadavg()[0]:.1f})"
            )
        inputs = tail_inputs()
        runs = sorted((frame_costs(inputs) for _ in range(args.runs)), key=lambda c: c[1])
        setup, mean, median = runs[len(runs) // 2]
        print(
            f"tail frames alone, one OpenCV thread (CPU time, median run): setup + frame 0 {1000 * setup:.0f} ms, "
            f"then {mean:.1f} ms per frame (median {median:.1f}) (load average {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
