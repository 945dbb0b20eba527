"""Hanging: never yields a frame and ignores cancellation (only the grace-period kill stops it)."""

import time
from collections.abc import Iterator

import numpy as np

from kinema.engines import CancelCheck, EngineInputs, LogFn, ProgressFn


class Hanging:
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
        log("hanging engine: sleeping forever")
        while True:
            time.sleep(3600)
        yield  # pragma: no cover - makes this a generator


def load(settings: object, device: str) -> Hanging:
    return Hanging()
