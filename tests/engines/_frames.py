"""Shared by the fixture engines: a scrolling clip of the input image, in the engine form.

``FixtureEngine`` yields ``30 x duration`` frames (or what its ``fps`` needs) at the size the
pipeline asks for, checks the cancel flag before every frame and reports progress per frame.
Hooks let a fixture sleep, fail or crash at a given frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from kinema.engines import CancelCheck, EngineInputs, LogFn, Progress, ProgressFn
from kinema.errors import Cancelled
from kinema.pipeline.contract import source_frames_needed


@dataclass
class FixtureEngine:
    fps: float = 30.0
    per_frame_s: float = 0.0
    on_frame: Callable[[int, EngineInputs, LogFn], None] | None = None

    def frames(
        self,
        inputs: EngineInputs,
        *,
        size: tuple[int, int],
        progress: ProgressFn,
        should_cancel: CancelCheck,
        log: LogFn,
    ) -> Iterator[np.ndarray]:
        base = cv2.resize(inputs.image, size, interpolation=cv2.INTER_AREA)
        n = source_frames_needed(self.fps, inputs.num_frames)
        for i in range(n):
            if should_cancel():
                raise Cancelled()
            if self.on_frame is not None:
                self.on_frame(i, inputs, log)
            if self.per_frame_s:
                time.sleep(self.per_frame_s)
            progress(Progress(i + 1, n, "render"))
            yield np.roll(base, i, axis=1)
