"""Prompt camera moves: a per-frame homography of the first frame that never leaves the picture.

Each family moves the view the way its name says, with the cue that tells it apart:

- **push-in / pull-out**: a zoom about the centre; **drone-forward**: a bigger zoom about a point
  high in the frame (near the horizon of a landscape), so that the lower part of the frame, the
  ground nearer the camera, streams out faster than the top;
- **pan / tilt**: the camera turns (a rotation homography, so a slight keystone rides along with
  the translation); **track / crane**: the camera slides (a pure translation, as a camera moving
  parallel to the scene sees it);
- **orbit**: the yaw of a camera circling the subject: the side the camera moves towards grows
  and the other side shrinks (a keystone homography that keeps verticals vertical), with a small
  slide the same way. An earlier shear about the middle row (near things below one way, far things
  above the other) leaned every vertical (towers, door frames) and was dropped;
- **roll**: a rotation about the centre; **shake**: seeded smooth handheld jitter (sums of
  sinusoids between 0.6 and 2.4 Hz, translation and roll), faded in from frame 0.

The view never shows anything outside the picture: at every frame the smallest extra zoom that
keeps the view inside the picture is found, then pulled earlier (a look-ahead maximum, smoothed)
so that the zoom a pan needs is mostly done while the move speeds up and the rest of the move is
nearly pure translation. A pull-out that starts from the full first frame is therefore cancelled
(it would have to invent what lies outside the picture): :func:`plan` says so in its notes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from .timing import RAMP, ease

__all__ = ["AMOUNTS", "LIMITS", "CameraPlan", "CameraScene", "plan"]

#: What each family does at cfg_scale 1 and normal intensity, per phase:
#: zoom (log factor), pan (fraction of the frame the view moves, x right / y down), yaw / pitch / roll
#: (degrees; a yaw or pitch of 1 degree moves the centre by about 1.7 % of the long side), keystone (the
#: right edge grows by this fraction, the left edge shrinks: the side the orbiting camera nears), shake
#: amplitude (fraction of the short side), anchor_y (where the zoom is centred, fraction of the height above the
#: middle).
AMOUNTS: dict[str, dict[str, float]] = {
    "push-in": {"zoom": math.log(1.30)},
    "pull-out": {"zoom": -math.log(1.30)},
    "drone-forward": {"zoom": math.log(1.45), "anchor_y": 0.15},
    "pan-left": {"pan_x": -0.05, "yaw": 2.5},
    "pan-right": {"pan_x": 0.05, "yaw": -2.5},
    "tilt-up": {"pan_y": -0.03, "pitch": -2.5},
    "tilt-down": {"pan_y": 0.03, "pitch": 2.5},
    "track-left": {"pan_x": -0.10},
    "track-right": {"pan_x": 0.10},
    "crane-up": {"pan_y": -0.11},
    "crane-down": {"pan_y": 0.11},
    "orbit-left": {"keystone": -0.14, "pan_x": -0.03},
    "orbit-right": {"keystone": 0.14, "pan_x": 0.03},
    "roll-cw": {"roll": -6.0},
    "roll-ccw": {"roll": 6.0},
    "shake": {"shake": 0.02},
}
#: The most each parameter may reach, whatever the phases and intensities add up to.
LIMITS = {
    "zoom": math.log(2.2),
    "pan_x": 0.2,
    "pan_y": 0.2,
    "yaw": 6.0,
    "pitch": 6.0,
    "roll": 15.0,
    "keystone": 0.25,
    "shake": 0.04,
}
_KEYS = ("zoom", "pan_x", "pan_y", "yaw", "pitch", "roll", "keystone", "anchor_y", "shake")
#: The cover zoom curve is smoothed over this many frames (Gaussian sigma).
_SMOOTH_FRAMES = 6.0
_SHAKE_HZ = ((0.6, 1.1), (1.1, 1.7), (1.7, 2.4))


@dataclass(frozen=True)
class CameraPlan:
    """Output-to-source homographies (n, 3, 3), frame 0 the identity, and what the plan had to change."""

    homographies: np.ndarray
    cover: np.ndarray  # the extra zoom at each frame
    notes: tuple[str, ...]

    @property
    def is_still(self) -> bool:
        return bool(np.allclose(self.homographies, np.eye(3)[None], atol=1e-9))

    def content_shift(self, size: tuple[int, int]) -> np.ndarray:
        """(n, 2): where the picture's centre is drawn at each frame, minus the centre (output pixels)."""
        w, h = size
        centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
        drawn = np.linalg.inv(self.homographies) @ centre  # output-from-source at each frame
        shift: np.ndarray = drawn[:, :2] / drawn[:, 2:] - centre[:2]
        return shift


def plan(
    phases: list[list[tuple[str, float]]], n: int, size: tuple[int, int], *, seed: int = 0, fps: int = 30
) -> CameraPlan:
    """The homographies of ``phases`` (each a list of (family, amount)), played one after the other.

    ``amount`` scales the family's :data:`AMOUNTS` (cfg_scale × intensity). Phases share the clip
    equally and each follows the timing law (``timing.ease``) over its share.
    """
    params = _parameters(phases, n)
    asked_out = float(params["zoom"].min())
    # Never wider than the first frame: that would show what lies outside the picture.
    params["zoom"] = np.maximum(params["zoom"], 0.0)
    limited = []
    for key, bound in LIMITS.items():  # stacked phases and "heavy" words add up: keep the view usable
        if np.abs(params[key]).max() > bound:
            limited.append(key.replace("_", " "))
            params[key] = np.clip(params[key], -bound, bound)
    shake = _shake(params["shake"], n, seed, fps)
    requested = [_forward(params, k, size, shake[k]) for k in range(n)]
    need = np.array([_cover(f, size) for f in requested])
    starts = [int(np.ceil(k * (n - 1) / len(phases))) for k in range(len(phases))] or [0]
    cover = _early(need, starts, n)
    homs = np.empty((n, 3, 3))
    for k in range(n):
        homs[k] = np.linalg.inv(_about_centre(cover[k], size) @ requested[k])
    homs[0] = np.eye(3)
    notes: list[str] = []
    if cover.max() > 1.0005:
        reach = int(np.argmax(cover >= cover.max() - 1e-3 * (cover.max() - 1)))
        notes.append(
            f"the view zooms in x{cover.max():.2f} (reached at {reach / fps:.1f} s) so that it stays "
            f"inside the picture: nothing outside the picture is invented"
        )
    if asked_out < -1e-6:
        notes.append(
            f"zooming out to x{math.exp(asked_out):.2f} of the first frame reduced to x1.00: a view "
            f"wider than the first frame would show what lies outside the picture, which this engine "
            f"does not invent (a tail image of the wider view, or a learned engine, can show it)"
        )
    if limited:
        notes.append("the move was limited (" + ", ".join(limited) + ") to keep enough of the picture in view")
    return CameraPlan(homs, cover, tuple(notes))


def _parameters(phases: list[list[tuple[str, float]]], n: int) -> dict[str, np.ndarray]:
    out = {key: np.zeros(n) for key in _KEYS}
    if not phases:
        return out
    u = np.arange(n) / max(n - 1, 1)
    share = 1.0 / len(phases)
    for k, phase in enumerate(phases):
        local = np.clip((u - k * share) / share, 0.0, 1.0)
        progress = ease(local)
        for family, amount in phase:
            for key, value in AMOUNTS[family].items():
                if key == "anchor_y":
                    out[key][:] = max(float(out[key][0]), value)  # one zoom centre for the whole clip
                elif key == "shake":
                    out[key] = np.maximum(out[key], value * amount * (u > k * share - 1e-9))
                else:
                    out[key] += value * amount * progress
    return out


def _shake(amplitude: np.ndarray, n: int, seed: int, fps: int) -> np.ndarray:
    """(n, 3) handheld offsets: dx, dy (fractions of the short side) and roll (degrees), smooth and seeded."""
    out = np.zeros((n, 3))
    if not amplitude.any():
        return out
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x5AC3])
    t = np.arange(n) / fps
    for axis, scale in enumerate((1.0, 0.8, 15.0)):  # roll: 0.02 * 15 = 0.3 degrees at cfg 1
        for lo, hi in _SHAKE_HZ:
            freq, phase = rng.uniform(lo, hi), rng.uniform(0, 2 * np.pi)
            out[:, axis] += np.sin(2 * np.pi * freq * t + phase) - np.sin(phase)  # 0 at frame 0
        out[:, axis] *= scale / len(_SHAKE_HZ)
    fade = np.clip(t / 0.5, 0.0, 1.0)
    return out * (amplitude * fade * fade * (3 - 2 * fade))[:, None]


def _forward(p: dict[str, np.ndarray], k: int, size: tuple[int, int], shake: np.ndarray) -> np.ndarray:
    """Source-to-output homography requested at frame ``k`` (before the cover zoom)."""
    w, h = size
    f = float(max(w, h))
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    short = float(min(w, h))
    # Turn of the camera (yaw, pitch) as a rotation homography about the centre.
    yaw, pitch = math.radians(p["yaw"][k]), math.radians(p["pitch"][k])
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    kmat = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    turn = kmat @ rx @ ry @ np.linalg.inv(kmat)
    turn /= turn[2, 2]
    # Orbit: the side the camera nears grows, the other shrinks (x' = x / (1 + q x) about the centre).
    q = -p["keystone"][k] / (w / 2.0)
    keystone = _shift(cx, cy) @ np.array([[1, 0, 0], [0, 1, 0], [q, 0, 1.0]]) @ _shift(-cx, -cy)
    ay = cy - p["anchor_y"][k] * h
    # Zoom about the anchor, roll about the centre, then the view's move (content goes the other way).
    z = math.exp(p["zoom"][k])
    zoom = _about((cx, ay), z)
    theta = math.radians(p["roll"][k] + shake[2])
    c, s = math.cos(theta), math.sin(theta)
    roll = np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy], [0, 0, 1.0]])
    move = np.array(
        [
            [1, 0, -(p["pan_x"][k] * w + shake[0] * short) * z],
            [0, 1, -(p["pan_y"][k] * h + shake[1] * short) * z],
            [0, 0, 1.0],
        ]
    )
    homography: np.ndarray = move @ roll @ zoom @ keystone @ turn
    return homography


def _shift(x: float, y: float) -> np.ndarray:
    return np.array([[1, 0, x], [0, 1, y], [0, 0, 1.0]])


def _about(point: tuple[float, float], scale: float) -> np.ndarray:
    """Scaling by ``scale`` about ``point``."""
    x, y = point
    return np.array([[scale, 0, x - scale * x], [0, scale, y - scale * y], [0, 0, 1.0]])


def _about_centre(scale: float, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return _about(((w - 1) / 2.0, (h - 1) / 2.0), scale)


def _inside(forward: np.ndarray, scale: float, size: tuple[int, int]) -> bool:
    w, h = size
    inv = np.linalg.inv(_about_centre(scale, size) @ forward)
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
    src = inv @ corners
    if np.any(src[2] <= 0):
        return False
    x, y = src[0] / src[2], src[1] / src[2]
    tol = 1e-6
    return bool(np.all(x >= -tol) and np.all(x <= w - 1 + tol) and np.all(y >= -tol) and np.all(y <= h - 1 + tol))


def _cover(forward: np.ndarray, size: tuple[int, int]) -> float:
    """The smallest zoom (>= 1) about the centre that keeps the view inside the picture (bisection)."""
    if _inside(forward, 1.0, size):
        return 1.0
    lo, hi = 1.0, 1.5
    while not _inside(forward, hi, size):
        lo, hi = hi, hi * 1.5
        if hi > 20:
            raise ValueError("camera move leaves the picture")
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if _inside(forward, mid, size):
            hi = mid
        else:
            lo = mid
    return hi


def _early(need: np.ndarray, starts: list[int], n: int) -> np.ndarray:
    """A cover-zoom curve >= ``need``, 1 at frame 0, never decreasing.

    The largest zoom a phase needs is reached by the end of the phase's speed-up (the first
    quarter of its share of the clip), so that the rest of the phase is the move itself.
    """
    log_need = np.log(np.maximum(need, 1.0))
    if not log_need.any():
        return np.ones(n)
    curve = np.zeros(n)
    bounds = [*starts, n]
    before = 0.0
    for start, end in itertools.pairwise(bounds):
        top = max(float(log_need[start:end].max()), before)
        ramp_len = max(RAMP * (end - start), 1.0)
        x = np.clip((np.arange(start, end) - start) / ramp_len, 0.0, 1.0)
        curve[start:end] = before + (top - before) * x * x * (3 - 2 * x)
        before = top
    sigma = _SMOOTH_FRAMES
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.full(radius, curve[0]), curve, np.full(radius, curve[-1])])
    curve = np.maximum(np.convolve(padded, kernel, mode="valid"), log_need)
    curve = np.maximum.accumulate(curve)
    curve[0] = 0.0
    return np.exp(curve)


class CameraScene:
    """``frame(i)``: the first frame seen through the planned view at frame ``i``; frame 0 is the image exactly."""

    def __init__(self, base: np.ndarray, camera: CameraPlan):
        self.base = base
        self.camera = camera
        h, w = base.shape[:2]
        self.size = (w, h)
        # warpPerspective is about 1.5x faster on 4-channel images than on 3-channel ones.
        self.canvas = cv2.cvtColor(base, cv2.COLOR_RGB2RGBA)
        self._view = np.empty((h, w, 4), np.uint8)  # reused: per-frame large allocations cost page faults

    def frame(self, i: int) -> np.ndarray:
        m = self.camera.homographies[i]
        if i == 0 or np.allclose(m, np.eye(3), atol=1e-12):
            return self.base.copy()
        if abs(m[2, 0]) + abs(m[2, 1]) < 1e-15:  # affine (zoom, slide, roll, shake): warpAffine is ~2x cheaper
            cv2.warpAffine(
                self.canvas,
                m[:2] / m[2, 2],
                self.size,
                dst=self._view,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
        else:
            cv2.warpPerspective(
                self.canvas,
                m,
                self.size,
                dst=self._view,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
        rgb: np.ndarray = cv2.cvtColor(self._view, cv2.COLOR_RGBA2RGB)
        return rgb
