"""The timing law: how far along its move every animated thing is at each frame.

Every move (brush trajectories, camera moves, tail interpolation) uses one law. With
``u = i / (n - 1)`` the clip time of frame ``i`` of ``n``, the fraction of the move done is
``ease(u)``: the speed ramps up linearly over the first quarter of the clip, stays constant
over the middle half and ramps down linearly over the last quarter (a trapezoidal speed
profile). So ``ease(0) = 0``, ``ease(1) = 1``, and the position is continuous with a
continuous speed. Along a trajectory the fraction is of the arc length of the smooth path
through the points (``paths.py``), so the region moves at constant speed along the path between
the two ramps and turns gradually through every given point.

Effects do not move along a path; they fade in with :func:`fade_in` instead.
"""

from __future__ import annotations

import numpy as np

from .paths import SmoothPath

__all__ = ["FADE_IN_S", "RAMP", "clip_time", "ease", "fade_in", "path_offsets"]

#: Fraction of the clip spent accelerating (and again decelerating).
RAMP = 0.25
#: Seconds over which effects fade in from zero opacity.
FADE_IN_S = 1.0


def clip_time(num_frames: int) -> np.ndarray:
    """``u`` of every frame: ``i / (n - 1)``, from 0 at frame 0 to 1 at the last frame."""
    if num_frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {num_frames}")
    return np.arange(num_frames, dtype=np.float64) / (num_frames - 1)


def ease(u: np.ndarray | float, ramp: float = RAMP) -> np.ndarray:
    """Fraction of the move done at clip time ``u`` (trapezoidal speed profile)."""
    if not 0.0 < ramp <= 0.5:
        raise ValueError(f"ramp must be in (0, 0.5], got {ramp}")
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    norm = 2.0 * ramp * (1.0 - ramp)
    head = u * u / norm
    middle = (u - ramp / 2.0) / (1.0 - ramp)
    tail = 1.0 - (1.0 - u) ** 2 / norm
    return np.where(u < ramp, head, np.where(u > 1.0 - ramp, tail, middle))


def fade_in(frame_index: np.ndarray | int, fps: int, seconds: float = FADE_IN_S) -> np.ndarray:
    """Effect opacity factor: smoothstep from 0 at frame 0 to 1 after ``seconds``."""
    x = np.clip(np.asarray(frame_index, dtype=np.float64) / (fps * seconds), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def path_offsets(points: np.ndarray, num_frames: int) -> np.ndarray:
    """(n, 2) displacement from the first point at every frame, moving along the smooth path.

    ``points`` is (k, 2) in output pixels. The path is the centripetal Catmull-Rom spline through
    the points (:class:`~.paths.SmoothPath`); at frame ``i`` the region is at arc length
    ``ease(u_i) * L`` along it (length ``L``). Frame 0 gives (0, 0), the last frame exactly
    ``points[-1] - points[0]``, and the region passes through every given point.
    """
    path = SmoothPath(points)
    offsets = np.zeros((num_frames, 2))
    if len(path.points) < 2:
        return offsets
    offsets[:] = path.at(ease(clip_time(num_frames))) - path.points[0]
    offsets[0] = 0.0
    offsets[-1] = path.points[-1] - path.points[0]
    return offsets
