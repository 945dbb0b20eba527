"""Benchmark engine: 150 tiny black frames at once, so the measured time is kinema's own overhead.

The pipeline's ``done: … (render X ms)`` log line gives the render's own cost (engine, contract,
encoder), which the service benchmark subtracts from the request's total.
"""

from collections.abc import Iterator

import numpy as np

from kinema.engines import CancelCheck, EngineInputs, LogFn, ProgressFn


class Instant:
    fps = 30.0

    def frames(
        self,
        inputs: EngineInputs,
        *,
        size: tuple[int, int],
        progress: ProgressFn,
        should_cancel: CancelCheck,
        log: LogFn,
    ) -> Iterator[np.ndarray]:
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        for _ in range(inputs.num_frames):
            yield frame


def load(settings: object, device: str) -> Instant:
    return Instant()
