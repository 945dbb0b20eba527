"""What every engine needs to map a request onto its output frame.

The output size of the contract, resizing images and masks to it, and converting trajectory
points (input-image pixels, origin bottom-left, y up) to output pixels (origin top-left, y down).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "OUTPUT_SHORT_SIDE",
    "bbox",
    "fit_image",
    "output_size",
    "resize_image",
    "resize_mask",
    "trajectory_to_output",
]

#: fal's Kling clips: short side 720 px.
OUTPUT_SHORT_SIDE = 720


def output_size(width: int, height: int, short_side: int = OUTPUT_SHORT_SIDE) -> tuple[int, int]:
    """Output (width, height): the input's aspect ratio, short side ``short_side``, both sides even."""
    if width <= 0 or height <= 0:
        raise ValueError("image sides must be positive")
    scale = short_side / min(width, height)
    w = round(width * scale / 2.0) * 2
    h = round(height * scale / 2.0) * 2
    if width <= height:
        w = short_side
    else:
        h = short_side
    return max(w, 2), max(h, 2)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 image at ``size`` = (w, h): ``INTER_AREA`` when shrinking, ``INTER_CUBIC`` otherwise."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    w, h = size
    if (image.shape[1], image.shape[0]) == (w, h):
        return np.ascontiguousarray(image).copy()
    shrink = w * h < image.shape[0] * image.shape[1]
    out: np.ndarray = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return out


def fit_image(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, str | None]:
    """``image`` brought to ``size`` = (w, h) without stretching, and a note when it was cropped.

    An image of the same aspect ratio (within one pixel) is resized as :func:`resize_image` does.
    Otherwise the largest centred window of the output's aspect is cropped, then resized.
    """
    ih, iw = image.shape[:2]
    w, h = size
    if abs(iw * h - ih * w) <= max(w, h):  # same aspect up to rounding of one side
        return resize_image(image, size), None
    if iw * h > ih * w:  # wider: crop the sides
        cw, ch = max(round(ih * w / h), 1), ih
    else:  # taller: crop top and bottom
        cw, ch = iw, max(round(iw * h / w), 1)
    x0, y0 = (iw - cw) // 2, (ih - ch) // 2
    crop = np.ascontiguousarray(image[y0 : y0 + ch, x0 : x0 + cw])
    note = (
        f"{iw}x{ih} has another aspect ratio than the output {w}x{h}: centre crop {cw}x{ch} at "
        f"({x0}, {y0}), not stretched"
    )
    return resize_image(crop, size), note


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Boolean mask at ``size`` = (w, h): bilinear coverage thresholded at one half."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    m: np.ndarray = np.asarray(mask, dtype=bool).astype(np.uint8) * 255
    w, h = size
    if (m.shape[1], m.shape[0]) != (w, h):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    out: np.ndarray = m >= 128
    return out


def trajectory_to_output(
    points: Sequence[tuple[float, float]],
    image_shape: tuple[int, ...],
    size: tuple[int, int],
) -> np.ndarray:
    """(k, 2) points in output pixels (origin top-left, y down) from input-image pixels (origin bottom-left, y up).

    ``x_out = x * w / W`` and ``y_out = (H - y) * h / H`` for an input of W x H and output w x h.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 1:
        raise ValueError("a trajectory needs at least one point")
    in_h, in_w = image_shape[:2]
    w, h = size
    out = np.empty_like(pts)
    out[:, 0] = pts[:, 0] * (w / in_w)
    out[:, 1] = (in_h - pts[:, 1]) * (h / in_h)
    return out


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end-exclusive, of the true pixels; None when there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
