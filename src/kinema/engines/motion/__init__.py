"""kinema's default engine: a weight-free CPU motion engine (spec ``motion``).

``load`` is the seam's loader: the engine needs no weights, so loading it is free and the
device is ignored (it runs on the CPU with OpenCV). ``frames`` is the engine's core; ``render``
is its old per-job entry point that also encodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from kinema.engines import (
    OUTPUT_FPS,
    CancelCheck,
    EngineInputs,
    LogFn,
    Progress,
    ProgressFn,
)
from kinema.errors import Cancelled

from .engine import DEFAULT_SEED, frames, mode_of, render

if TYPE_CHECKING:
    from kinema.settings import Settings

__all__ = ["DEFAULT_SEED", "MotionEngine", "frames", "load", "mode_of", "render"]


@dataclass(frozen=True)
class MotionEngine:
    """The motion engine behind the seam: 30 fps frames at the requested size."""

    device: str = "cpu"

    @property
    def fps(self) -> float:
        return float(OUTPUT_FPS)

    def frames(
        self,
        inputs: EngineInputs,
        *,
        size: tuple[int, int],
        progress: ProgressFn,
        should_cancel: CancelCheck,
        log: LogFn,
    ) -> Iterator[np.ndarray]:
        n = inputs.num_frames
        made = frames(inputs, size, log=log)
        threads = cv2.getNumThreads()
        try:
            for i in range(n):
                if should_cancel():
                    raise Cancelled(f"cancelled at frame {i} of {n}")
                frame = next(made)
                progress(Progress(i + 1, n, "render"))
                yield frame
                if i == 0:
                    # Set-up done (frame 0 comes after the scene's analysis, which uses every core):
                    # one OpenCV thread from here on, the encoder keeps the other cores busy
                    # (measured 10 % faster tail renders on 2 cores).
                    cv2.setNumThreads(1)
        finally:
            cv2.setNumThreads(threads)
            close = getattr(made, "close", None)
            if close is not None:
                close()


def load(settings: Settings, device: str) -> MotionEngine:
    """The seam's loader (nothing to load: no weights)."""
    return MotionEngine(device)
