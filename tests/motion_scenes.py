"""Test scenes whose every frame or uncovered pixel is known (ground truth), from scikit-image photos.

Used by the motion tests and by ``scripts/contact_sheets.py``. Imports nothing from the engine
but the input types.

- :func:`pasted_object`: an object cut from one photo (soft-edged) pasted onto another photo; the
  true background behind it is the second photo.
- :func:`camera_pair`: two views of a larger photo (a pan or a zoom); the true view at any time
  of the move is a crop of the same photo.
- :func:`moving_object_pair`: a pan of the same larger photo, with an object that also moves on its own.
- :func:`unrelated_pair`: two photos with nothing in common.
- :func:`zigzag_path`: a brush moving along a zig-zag.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data

from kinema.engines import DynamicBrush, EngineInputs

__all__ = [
    "CameraPair",
    "PastedObject",
    "camera_pair",
    "moving_object_pair",
    "mid_similarity",
    "pasted_object",
    "unrelated_pair",
    "view_at",
    "zigzag_path",
]


@dataclass(frozen=True)
class PastedObject:
    inputs: EngineInputs
    background: np.ndarray  # the true background photo, input resolution
    mask: np.ndarray  # the object's mask (alpha >= 0.5), input resolution: the painted brush mask
    alpha: np.ndarray  # the object's true soft alpha, input resolution
    painted: np.ndarray  # the mask given to the engine


def pasted_object(loose_px: int = 0, move: tuple[int, int] = (-300, -60)) -> PastedObject:
    """The cat's face (chelsea, soft elliptic edge, sigma 1 px) pasted on the coffee table's wood.

    The brush mask is the object's mask, grown by ``loose_px`` (a loosely painted mask); the
    trajectory moves it by ``move`` (input pixels, y up).
    """
    bg = data.coffee()  # 600 x 400: renders at 1080 x 720
    src = data.chelsea()
    cx, cy, ax, ay = 250, 150, 70, 55
    soft = np.zeros(src.shape[:2], np.float32)
    cv2.ellipse(soft, (cx, cy), (ax, ay), 0, 0, 360, 1.0, -1)
    soft = cv2.GaussianBlur(soft, (0, 0), 1.0)
    h, w = bg.shape[:2]
    px, py, m = 520, 110, ax + 6
    alpha = np.zeros((h, w), np.float32)
    alpha[py - m : py + m, px - m : px + m] = soft[cy - m : cy + m, cx - m : cx + m]
    obj = np.zeros((h, w, 3), np.float32)
    obj[py - m : py + m, px - m : px + m] = src[cy - m : cy + m, cx - m : cx + m]
    image = np.rint(alpha[..., None] * obj + (1 - alpha[..., None]) * bg).astype(np.uint8)
    mask = alpha >= 0.5
    painted = mask
    if loose_px:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * loose_px + 1, 2 * loose_px + 1))
        painted = cv2.dilate(mask.astype(np.uint8), k) > 0
    path = ((px, h - py), (px + move[0], h - py + move[1]))
    inputs = EngineInputs(prompt="", image=image, dynamic_brushes=(DynamicBrush(painted, path),))
    return PastedObject(inputs=inputs, background=bg, mask=mask, alpha=alpha, painted=painted)


@dataclass(frozen=True)
class CameraPair:
    inputs: EngineInputs
    photo: np.ndarray  # the larger photo both views are cut from
    first: np.ndarray  # (3,) window of the first view: x0, y0, width (height = width * 9 / 16)
    last: np.ndarray  # the same for the tail


def _large_photo() -> np.ndarray:
    """scikit-image's rocket (640 x 427) enlarged to 2400 x 1601: the 'world' both views see."""
    return cv2.resize(data.rocket(), (2400, 1601), interpolation=cv2.INTER_CUBIC)


def view_at(photo: np.ndarray, window: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The view of ``window`` (x0, y0, width; 16:9) of ``photo`` at ``size``, by one area/cubic resize."""
    x0, y0, wd = (float(v) for v in window)
    ht = wd * 9 / 16
    sx, sy = size[0] / wd, size[1] / ht
    m = np.float64([[sx, 0, -x0 * sx + 0.5 * sx - 0.5], [0, sy, -y0 * sy + 0.5 * sy - 0.5]])
    if sx < 1:  # shrinking: pre-blur as an area filter would
        sigma = 0.5 * np.sqrt(max(1 / sx**2 - 1, 0))
        photo = cv2.GaussianBlur(photo, (0, 0), sigma)
    return cv2.warpAffine(photo, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def camera_pair(kind: str) -> CameraPair:
    """'pan': the view moves right by a quarter of its width; 'zoom': the view narrows by 20 %."""
    photo = _large_photo()
    first = np.float64([500.0, 300.0, 1280.0])
    if kind == "pan":
        last = np.float64([500.0 + 320.0, 300.0, 1280.0])
    elif kind == "zoom":
        last = np.float64([500.0 + 128.0, 300.0 + 72.0, 1024.0])
    else:
        raise ValueError(kind)
    a = view_at(photo, first, (1280, 720))
    b = view_at(photo, last, (1280, 720))
    return CameraPair(inputs=EngineInputs(prompt="", image=a, tail_image=b), photo=photo, first=first, last=last)


@dataclass(frozen=True)
class MovingObject:
    inputs: EngineInputs
    patch: np.ndarray  # the object (RGB, square), pasted unscaled into both images
    start: np.ndarray  # (x, y) of its top-left corner in the first image
    step: np.ndarray  # where it is in the tail image minus ``start`` (the pan included), output px
    move: np.ndarray  # its own move in the scene, without the pan


def moving_object_pair(pan_px: int = 160, move: tuple[int, int] = (60, 30)) -> MovingObject:
    """Two 1280 x 720 views of the rocket photo ``pan_px`` apart (the camera pans right), with the
    cat's face (120 x 120) pasted into both: it moves ``move`` px in the scene besides the pan."""
    photo = _large_photo()
    a = view_at(photo, np.float64([500.0, 300.0, 1280.0]), (1280, 720))
    b = view_at(photo, np.float64([500.0 + pan_px, 300.0, 1280.0]), (1280, 720))
    patch = cv2.resize(data.chelsea()[60:260, 150:350], (120, 120), interpolation=cv2.INTER_AREA)
    start = np.array([560, 300])
    step = np.array(move) - np.array([pan_px, 0])
    (x0, y0), (x1, y1) = start, start + step
    a[y0 : y0 + 120, x0 : x0 + 120] = patch
    b[y1 : y1 + 120, x1 : x1 + 120] = patch
    return MovingObject(EngineInputs(prompt="", image=a, tail_image=b), patch, start, step, np.array(move))


def mid_similarity(first: np.ndarray, last: np.ndarray, t: float) -> np.ndarray:
    """The window at time ``t`` of a camera moving at a constant rate: scale changes geometrically
    (width_t = w0 * (w1 / w0) ** t) and the fixed point of the move stays fixed."""
    s = last[2] / first[2]
    st = s**t
    if abs(s - 1) < 1e-9:
        x0, y0 = first[:2] + t * (last[:2] - first[:2])
    else:
        # Window origin o_t = c + st * (o_0 - c), where c is the move's fixed point.
        c = (last[:2] - s * first[:2]) / (1 - s)
        x0, y0 = c + st * (first[:2] - c)
    return np.float64([x0, y0, first[2] * st])


def unrelated_pair() -> EngineInputs:
    """The astronaut, then the coffee cup (both cropped square): no motion relates them."""
    a = data.astronaut()
    b = np.ascontiguousarray(data.coffee()[:, 100:500])
    b = cv2.resize(b, (512, 512), interpolation=cv2.INTER_CUBIC)
    return EngineInputs(prompt="", image=a, tail_image=b)


def zigzag_path() -> EngineInputs:
    """The astronaut's helmet patch moving along a 5-point zig-zag (corners of 77 degrees)."""
    img = data.astronaut()
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.circle(mask, (120, 380), 45, 1, -1)
    pts = ((120, 132), (220, 212), (320, 132), (420, 212), (470, 172))
    return EngineInputs(prompt="", image=img, dynamic_brushes=(DynamicBrush(mask > 0, pts),))
