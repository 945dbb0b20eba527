"""The timing law: how far along its move every animated thing is at each frame.

Every move (brush trajectories, camera moves, tail interpolation) uses one law. With
``u = i / (n - 1)`` the clip time of frame ``i`` of ``n``, the fraction of the move done is
``ease(u)``: the speed ramps up linearly over the first quarter of the clip, stays constant
over the middle half and ramps down linearly over the last quarter (a trapezoidal speed
profile). So ``ease(0) = 0``, ``ease(1) = 1``, and the position is continuous with a
continuous speed. Along a trajectory the fraction is of the polyline's arc length, so the
region moves at constant speed along the path between the two ramps.

Effects do not move along a path; they fade in with :func:`fade_in` instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RAMP", "FADE_IN_S", "clip_time", "ease", "fade_in", "path_offsets"]

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
    """(n, 2) displacement from the first point at every frame, moving along the polyline.

    ``points`` is (k, 2) in output pixels. At frame ``i`` the region is at arc length
    ``ease(u_i) * L`` along the polyline of length ``L``; frame 0 gives (0, 0) and the last
    frame exactly ``points[-1] - points[0]``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 1:
        raise ValueError(f"points must be (k, 2), got {pts.shape}")
    seg = np.diff(pts, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    keep = np.concatenate([[True], lengths > 1e-9])
    pts = pts[keep]
    arc = np.concatenate([[0.0], np.cumsum(lengths[lengths > 1e-9])])
    offsets = np.zeros((num_frames, 2))
    if len(pts) < 2:
        return offsets
    s = ease(clip_time(num_frames)) * arc[-1]
    offsets[:, 0] = np.interp(s, arc, pts[:, 0]) - pts[0, 0]
    offsets[:, 1] = np.interp(s, arc, pts[:, 1]) - pts[0, 1]
    offsets[-1] = pts[-1] - pts[0]
    return offsets
