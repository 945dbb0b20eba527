"""Shared by the fixture engines: small frames from the input image, streamed to the real encoder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from kinema.engines import EngineInputs, Progress, RenderInfo
from kinema.errors import Cancelled
from kinema.media.encode import VideoWriter

SIZE = (160, 90)


def encode_small(
    inputs: EngineInputs,
    output: Path,
    callback: Callable[[Progress], None],
    should_cancel: Callable[[], bool],
    *,
    per_frame_s: float = 0.0,
    on_frame: Callable[[int], None] | None = None,
) -> RenderInfo:
    w, h = SIZE
    base = cv2.resize(inputs.image, (w, h), interpolation=cv2.INTER_AREA)
    n = inputs.num_frames
    with VideoWriter(output, w, h, 30, preset="ultrafast") as writer:
        for i in range(n):
            if should_cancel():
                raise Cancelled()
            if on_frame is not None:
                on_frame(i)
            frame = np.roll(base, i, axis=1)
            writer.write(frame)
            if per_frame_s:
                time.sleep(per_frame_s)
            callback(Progress(i + 1, n))
    return RenderInfo(w, h, 30, n)
