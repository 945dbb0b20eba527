"""Benchmark engine: 150 tiny frames (16×16), so the measured time is kinema's own overhead."""

import time
from pathlib import Path

import numpy as np

from kinema.engines import EngineInputs, Progress, RenderInfo
from kinema.media.encode import VideoWriter


def render(inputs: EngineInputs, output: Path, *, callback, should_cancel, log) -> RenderInfo:
    t0 = time.perf_counter()
    n = inputs.num_frames
    frame = np.zeros((16, 16, 3), np.uint8)
    with VideoWriter(output, 16, 16, 30, preset="ultrafast") as w:
        for i in range(n):
            w.write(frame)
            callback(Progress(i + 1, n))
    log(f"engine_ms={(time.perf_counter() - t0) * 1000:.2f}")
    return RenderInfo(16, 16, 30, n)
