"""Benchmark engine for the engine lifecycle: 5 s to load (a model onto its GPU), 0.2 s per clip."""

import time
from collections.abc import Iterator

import numpy as np

from kinema.engines import CancelCheck, EngineInputs, LogFn, ProgressFn

LOAD_S = 5.0
RENDER_S = 0.2


class Warm:
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
        time.sleep(RENDER_S)  # the whole clip's compute, then its frames
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        for _ in range(inputs.num_frames):
            yield frame


def load(settings: object, device: str) -> Warm:
    time.sleep(LOAD_S)
    return Warm()
