"""Motion brush: dynamic regions as rigid layers over a once-filled background, static region in front.

Each dynamic mask is refined to the object's edges with a soft alpha matte (``matte.py``) and
becomes a layer: the object's own colours (the background's share of its soft edge removed)
and that alpha. The hole the layers leave (their support grown by ``HOLE_GROW_PX``) is filled
once from the background only by a coarse-to-fine PatchMatch (``fill.py``). Frame 0 is the
image itself. Per frame only the rectangles the layers cover are touched, in uint8: a sub-pixel
``warpAffine`` of the small RGBA patch (averaged along the motion when it is fast: motion
blur), an integer placement, ``cv2.blendLinear`` over the frame. Later masks are drawn over
earlier ones; the static region is pasted last, unchanged.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from .fill import fill_hole
from .geometry import bbox
from .matte import Matte, foreground_colour, refine

__all__ = ["HOLE_GROW_PX", "BrushScene", "Layer", "fill_background", "make_layer"]

#: The hole is the layers' alpha support grown by this much: past the object's own soft edge.
HOLE_GROW_PX = 3
#: Motion blur: the layer is averaged over this fraction of a frame's travel (a 180-degree shutter).
SHUTTER = 0.5
#: Motion blur starts when the blur would be longer than this (px): faster than 3 px per frame.
BLUR_MIN_PX = 1.5
#: At most this many sub-positions are averaged for motion blur.
BLUR_SAMPLES_MAX = 9


@dataclass(frozen=True)
class Layer:
    """A moving region: an RGBA patch cut at (x0, y0) and its (n, 2) displacement per frame."""

    patch: np.ndarray  # (h, w, 4) uint8: the image's RGB and the feathered alpha
    x0: int
    y0: int
    offsets: np.ndarray  # (n, 2) float64, output pixels


def make_layer(image: np.ndarray, background: np.ndarray, matte: Matte, offsets: np.ndarray) -> Layer:
    """The RGBA layer of ``matte``: the object's colour (background's share removed) and its alpha."""
    h, w = matte.alpha.shape
    x0, y0 = matte.x0, matte.y0
    colour = foreground_colour(image[y0 : y0 + h, x0 : x0 + w], background[y0 : y0 + h, x0 : x0 + w], matte.alpha)
    patch = np.dstack([colour, np.rint(matte.alpha * 255).astype(np.uint8)])
    # One more transparent pixel all round (colour replicated) so sub-pixel shifts never darken an edge.
    patch = cv2.copyMakeBorder(patch, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    patch[[0, -1], :, 3] = 0
    patch[:, [0, -1], 3] = 0
    return Layer(patch=patch, x0=x0 - 1, y0=y0 - 1, offsets=np.asarray(offsets, dtype=np.float64))


def fill_background(base: np.ndarray, dynamic_masks: list[np.ndarray], static: np.ndarray | None) -> np.ndarray:
    """``base`` with the area the moving layers may uncover rebuilt from the background.

    The hole is the union of the layers' supports (alpha > 0) grown by ``HOLE_GROW_PX``, minus the
    static region; patches come only from pixels outside it and outside the static region.
    """
    union = np.zeros(base.shape[:2], dtype=bool)
    for m in dynamic_masks:
        union |= m
    if not union.any():
        return base.copy()
    size = 2 * HOLE_GROW_PX + 1
    grown = cv2.dilate(union.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0
    allowed = ~grown
    hole = grown
    if static is not None:
        hole = hole & ~static
        allowed &= ~static
    return fill_hole(base, hole, allowed)


class BrushScene:
    """Builds brush frames: ``frame(i)`` composites every layer at its frame-``i`` displacement."""

    def __init__(
        self,
        base: np.ndarray,
        static_mask: np.ndarray | None,
        dynamic_masks: list[np.ndarray],
        offsets: list[np.ndarray],
    ):
        # 1. Each painted mask refined to the object's edges, with a soft alpha (matte.py).
        self.base = base
        self.height, self.width = base.shape[:2]
        with ThreadPoolExecutor(max_workers=2) as pool:  # GrabCut releases the GIL: both cores
            mattes = list(pool.map(lambda m: refine(base, m), dynamic_masks))
        self.refined = sum(1 for m in mattes if m is not None and m.refined)
        supports = [m.full(base.shape[:2]) > 0 for m in mattes if m is not None]
        # 2. Background: where the objects were, grown past their soft edge so no outline stays
        #    behind, filled once from the background only; static pixels kept.
        self.static = static_mask if static_mask is not None and static_mask.any() else None
        self.background = fill_background(base, supports, self.static)
        # 3. Layers, in drawing order (later masks over earlier ones), in the objects' own colours.
        self.layers = [
            make_layer(base, self.background, m, o) for m, o in zip(mattes, offsets, strict=True) if m is not None
        ]
        self.static_box = bbox(self.static) if self.static is not None else None

    def frame(self, i: int) -> np.ndarray:
        """The composite at frame ``i`` (frame 0 is the base image exactly)."""
        if i == 0:
            return self.base.copy()
        out = self.background.copy()
        for layer in self.layers:
            box = self._draw(out, layer, i)
            if box is not None:
                self.paste_static(out, box)
        return out

    def paste_static(self, out: np.ndarray, box: tuple[int, int, int, int] | None = None) -> None:
        """Copy the static region of the base image into ``out`` (within ``box`` if given)."""
        if self.static is None or self.static_box is None:
            return
        sx0, sy0, sx1, sy1 = self.static_box
        if box is not None:
            sx0, sy0 = max(sx0, box[0]), max(sy0, box[1])
            sx1, sy1 = min(sx1, box[2]), min(sy1, box[3])
            if sx0 >= sx1 or sy0 >= sy1:
                return
        where = self.static[sy0:sy1, sx0:sx1]
        np.copyto(out[sy0:sy1, sx0:sx1], self.base[sy0:sy1, sx0:sx1], where=where[..., None])

    def _draw(self, out: np.ndarray, layer: Layer, i: int) -> tuple[int, int, int, int] | None:
        """Blend ``layer`` at its frame-``i`` displacement into ``out``; returns the touched box or None.

        Moving faster than 3 px per frame (a blur longer than ``BLUR_MIN_PX``), the layer is averaged
        over the positions it passes during ``SHUTTER`` of a frame (centred on its position: the
        path is unchanged).
        """
        offset = layer.offsets[i]
        dx, dy = float(offset[0]), float(offset[1])
        ix, iy = int(np.floor(dx)), int(np.floor(dy))
        fx, fy = dx - ix, dy - iy
        patch = layer.patch
        n = len(layer.offsets)
        velocity = (layer.offsets[min(i + 1, n - 1)] - layer.offsets[max(i - 1, 0)]) / 2.0
        travel = float(np.hypot(*velocity)) * SHUTTER
        margin = 0
        if travel > BLUR_MIN_PX:
            patch, margin = _blurred(patch, fx, fy, velocity * SHUTTER, min(BLUR_SAMPLES_MAX, int(np.ceil(travel)) + 1))
        elif fx > 1e-6 or fy > 1e-6:
            ph, pw = patch.shape[:2]
            shift = np.asarray([[1, 0, fx], [0, 1, fy]], dtype=np.float32)
            patch = cv2.warpAffine(
                patch, shift, (pw + 1, ph + 1), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        ph, pw = patch.shape[:2]
        x0, y0 = layer.x0 + ix - margin, layer.y0 + iy - margin
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + pw, self.width), min(y0 + ph, self.height)
        if cx0 >= cx1 or cy0 >= cy1:
            return None
        src = patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        dst = out[cy0:cy1, cx0:cx1]
        weight = cv2.multiply(src[..., 3], 1.0 / 255.0, dtype=cv2.CV_32F)
        blended = cv2.blendLinear(np.ascontiguousarray(src[..., :3]), dst, weight, 1.0 - weight)
        dst[...] = blended
        return cx0, cy0, cx1, cy1


def _blurred(patch: np.ndarray, fx: float, fy: float, sweep: np.ndarray, samples: int) -> tuple[np.ndarray, int]:
    """The patch shifted by (fx, fy) and averaged along ``sweep`` (centred), premultiplied by alpha.

    Returns the patch and its margin: it is ``margin`` pixels larger on every side than an
    unblurred patch, so it is placed ``margin`` pixels up and left of one."""
    ph, pw = patch.shape[:2]
    reach = int(np.ceil(max(abs(sweep[0]), abs(sweep[1])) / 2.0)) + 1
    size = (pw + 2 * reach + 1, ph + 2 * reach + 1)
    # Premultiplied uint8 RGBA, warped per sample and summed in float32 (all in OpenCV).
    alpha = patch[..., 3]
    premult = patch.copy()
    for c in range(3):
        premult[..., c] = cv2.multiply(patch[..., c], alpha, scale=1.0 / 255.0)
    acc = np.zeros((size[1], size[0], 4), np.float32)
    for s in np.linspace(-0.5, 0.5, samples):
        m = np.asarray([[1, 0, fx + reach + s * sweep[0]], [0, 1, fy + reach + s * sweep[1]]], dtype=np.float32)
        cv2.accumulate(cv2.warpAffine(premult, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT), acc)
    a = acc[..., 3]
    out = np.empty((size[1], size[0], 4), np.uint8)
    scale = 255.0 / np.maximum(a, 1e-3)
    for c in range(3):
        out[..., c] = np.clip(acc[..., c] * scale, 0, 255)
    out[..., 3] = np.clip(a * (1.0 / samples) + 0.5, 0, 255)
    return out, reach
