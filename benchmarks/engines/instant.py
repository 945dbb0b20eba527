"""Benchmark engine: 150 tiny black frames, so the measured time is kinema's own overhead.

It logs ``engine_ms=`` (from its first frame to handing over its last, the pipeline encoding
between them) so the service benchmark can subtract the render from the request's total.
"""

import time
from collections.abc import Iterator

import numpy as np

from kinema.engines import CancelCheck, EngineInputs, LogFn, ProgressFn


class Instant:
    fps = 30.0

    def frames(self, inputs: EngineInputs, *, size: tuple[int, int], progress: ProgressFn,
               should_cancel: CancelCheck, log: LogFn) -> Iterator[np.ndarray]:
        t0 = time.perf_counter()
        n = inputs.num_frames
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        for i in range(n):
            if i == n - 1:
                log(f"engine_ms={(time.perf_counter() - t0) * 1000:.2f}")
            yield frame


def load(settings: object, device: str) -> Instant:
    return Instant()
