"""Tail image: frames between the first and the last image interpolated along optical flow.

Dense DIS flow (MEDIUM preset) is computed once in both directions at half resolution and
upsampled. A frame at time ``t`` (0 at the first image, 1 at the tail) warps the first image
``t`` of the way along its flow and the tail ``1 - t`` of the way back along its own, then
blends the two with weights ``1 - w`` and ``w``, ``w = blend_weight(t)``: 0 until t = 0.3, a
smoothstep to 1 at t = 0.7 (so near either end only one image needs warping). Matching
structures meet in the middle instead of the two pictures cross-fading, so the in-between
frames stay sharp. Warps sample 2x-upsampled sources, so bilinear sampling does not blur them.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["FLOW_SCALE", "BLEND_MARGIN", "TailScene", "blend_weight", "dense_flow"]

#: Resolution of the flow computation relative to the output.
FLOW_SCALE = 0.5
#: The tail's blend weight stays 0 for t below this, and 1 above 1 minus this.
BLEND_MARGIN = 0.3


def blend_weight(t: float) -> float:
    """Weight of the (warped) tail image at time ``t``: smoothstep over [BLEND_MARGIN, 1 - BLEND_MARGIN]."""
    x = min(max((t - BLEND_MARGIN) / (1.0 - 2.0 * BLEND_MARGIN), 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def dense_flow(a: np.ndarray, b: np.ndarray, scale: float = FLOW_SCALE) -> np.ndarray:
    """(H, W, 2) float32 flow from RGB ``a`` to RGB ``b`` (``a(x) ~ b(x + flow(x))``), computed at ``scale``."""
    h, w = a.shape[:2]
    sw, sh = max(int(round(w * scale)), 16), max(int(round(h * scale)), 16)
    ga = cv2.cvtColor(cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(cv2.resize(b, (sw, sh), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    small = dis.calc(ga, gb, None)
    flow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    flow[..., 0] *= w / sw
    flow[..., 1] *= h / sh
    return flow


class TailScene:
    """``frame(t)`` for t in [0, 1]; t = 0 and t = 1 return the two images exactly."""

    def __init__(self, first: np.ndarray, last: np.ndarray):
        if first.shape != last.shape:
            raise ValueError(f"first and last images differ in shape: {first.shape} vs {last.shape}")
        self.first, self.last = first, last
        self.identical = bool(np.array_equal(first, last))
        if self.identical:
            return
        h, w = first.shape[:2]
        # Warps sample 2x-upsampled sources (bicubic, even pixels exactly the originals): bilinear
        # sampling of the originals would blur every in-between frame by up to half a pixel.
        # Coordinates are therefore in source pixels x 2. remap is ~2.5x faster on 4 channels than 3.
        self._grid = np.empty((h, w, 2), np.float32)
        self._grid[..., 0] = np.arange(w, dtype=np.float32) * 2
        self._grid[..., 1] = (np.arange(h, dtype=np.float32) * 2)[:, None]
        self._forward = dense_flow(first, last) * np.float32(2)
        self._first2 = _upsample2(cv2.cvtColor(first, cv2.COLOR_RGB2RGBA))
        # The tail's side is prepared when first needed: the early frames warp the first image only,
        # so a renderer running ahead of its encoder absorbs this cost.
        self._backward: np.ndarray | None = None
        self._last2: np.ndarray | None = None
        # Work buffers reused every frame (fresh large allocations per frame cost page faults).
        self._maps = (np.empty_like(self._grid), np.empty_like(self._grid))
        self._warps = tuple(np.empty((h, w, 4), np.uint8) for _ in range(3))

    def frame(self, t: float) -> np.ndarray:
        if t <= 0.0 or self.identical:
            return self.first.copy()
        if t >= 1.0:
            return self.last.copy()
        # Backward warps: the pixel at x in the t-frame came from x - t*F01(x) in the first image
        # and from x - (1 - t)*F10(x) in the tail (flows assumed locally smooth).
        map0, map1 = self._maps
        warp0, warp1, blend = self._warps
        w = blend_weight(t)
        if w < 1.0:
            cv2.scaleAdd(self._forward, -t, self._grid, dst=map0)
            cv2.remap(self._first2, map0, None, cv2.INTER_LINEAR, dst=warp0, borderMode=cv2.BORDER_REPLICATE)
        if w > 0.0:
            if self._backward is None or self._last2 is None:
                self._backward = dense_flow(self.last, self.first) * np.float32(2)
                self._last2 = _upsample2(cv2.cvtColor(self.last, cv2.COLOR_RGB2RGBA))
            cv2.scaleAdd(self._backward, -(1.0 - t), self._grid, dst=map1)
            cv2.remap(self._last2, map1, None, cv2.INTER_LINEAR, dst=warp1, borderMode=cv2.BORDER_REPLICATE)
        if 0.0 < w < 1.0:
            cv2.addWeighted(warp0, 1.0 - w, warp1, w, 0.0, dst=blend)
        else:
            blend = warp0 if w == 0.0 else warp1
        return cv2.cvtColor(blend, cv2.COLOR_RGBA2RGB)


#: Bicubic weights (a = -0.75, as OpenCV's INTER_CUBIC) for the value half-way between two pixels.
_HALF = np.float32([-3.0, 19.0, 19.0, -3.0]) / 32.0
_ONE = np.float32([1.0])


def _upsample2(image: np.ndarray) -> np.ndarray:
    """(2H, 2W, 4) bicubic upsampling of an RGBA image; pixel (2y, 2x) is ``image[y, x]``."""
    h, w = image.shape[:2]
    if image.shape[2] != 4 or image.dtype != np.uint8:
        raise ValueError("expected an RGBA uint8 image")
    # Columns: originals at even x, half-way values at odd x (pixels handled whole, as uint32).
    half_x = cv2.sepFilter2D(image, -1, _HALF, _ONE, anchor=(1, 0), borderType=cv2.BORDER_REPLICATE)
    wide = np.empty((h, 2 * w), np.uint32)
    wide[:, 0::2] = image.view(np.uint32)[..., 0]
    wide[:, 1::2] = half_x.view(np.uint32)[..., 0]
    rows = wide.view(np.uint8).reshape(h, 2 * w, 4)
    # Rows: the same between rows.
    half_y = cv2.sepFilter2D(rows, -1, _ONE, _HALF, anchor=(0, 1), borderType=cv2.BORDER_REPLICATE)
    out = np.empty((2 * h, 2 * w, 4), np.uint8)
    out[0::2] = rows
    out[1::2] = half_y
    return out
