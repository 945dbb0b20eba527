"""The output contract, kept in one place: whatever an engine yields becomes fal's clip.

30 fps, exactly 30 x duration frames, at the requested size (short side 720, both sides even),
frame 0 equal to the input image resized (bit-exact before encoding). An engine at another frame
rate (a 16 fps video model) is converted by optical-flow interpolation between its consecutive
frames, with the motion engine's DIS-flow warper (:class:`kinema.engines.motion.tail.TailScene`);
a 30 fps engine at the right size passes straight through. An engine that stops early has its
last frame held (and the log says so); frames beyond the clip are not asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from kinema.engines import OUTPUT_FPS, LogFn, Progress, ProgressFn
from kinema.engines.geometry import resize_image
from kinema.engines.motion.tail import TailScene

__all__ = ["conform", "source_frames_needed"]


def source_frames_needed(fps: float, count: int) -> int:
    """Frames an engine at ``fps`` must yield for ``count`` output frames at 30 fps (81 for 16 fps, 5 s)."""
    if count <= 0:
        return 0
    return math.ceil((count - 1) * fps / OUTPUT_FPS - 1e-9) + 1


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"engine frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return resize_image(frame, size)


def conform(
    source: Iterator[np.ndarray],
    *,
    fps: float,
    first: np.ndarray,
    count: int,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
) -> Iterator[np.ndarray]:
    """Yield the ``count`` output frames at 30 fps and the size of ``first`` (the input image resized).

    ``source`` yields the engine's frames at ``fps``; its frame 0 is replaced by ``first``.
    """
    if fps <= 0:
        raise ValueError(f"engine fps must be positive, got {fps}")
    size = (first.shape[1], first.shape[0])
    say: LogFn = log if log is not None else (lambda _m: None)
    report: ProgressFn = progress if progress is not None else (lambda _p: None)
    held = False

    def pull() -> np.ndarray | None:
        nonlocal held
        try:
            return _fit(next(source), size)
        except StopIteration:
            if not held:
                held = True
                say("the engine yielded fewer frames than the clip needs; holding its last frame")
            return None

    if count <= 0:
        return
    if pull() is None:  # the engine's own frame 0 (replaced by the input image)
        say("the engine yielded no frames")
    yield first.copy()
    if abs(fps - OUTPUT_FPS) < 1e-6:
        last = first
        for _ in range(1, count):
            frame = pull()
            if frame is not None:
                last = frame
            yield last
        return

    say(f"converting {fps:g} fps to {OUTPUT_FPS} fps by optical-flow interpolation")
    a_idx, a = 0, first
    b: np.ndarray | None = pull()
    scene: TailScene | None = None
    for i in range(1, count):
        pos = i * fps / OUTPUT_FPS
        while b is not None and pos >= a_idx + 1 - 1e-9:
            a_idx, a, scene = a_idx + 1, b, None
            b = pull()
        t = pos - a_idx
        if b is None or t < 1e-6:
            yield a.copy()
        else:
            if scene is None:
                scene = TailScene(a, b)
            yield scene.frame(t)
        report(Progress(i + 1, count, "interpolate"))
