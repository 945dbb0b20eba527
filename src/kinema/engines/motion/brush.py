"""Motion brush: dynamic regions as rigid layers over a once-filled background, static region in front.

Each dynamic mask becomes a layer: the image's own pixels with an alpha that is opaque on the
mask and fades to zero over ``FEATHER_PX`` pixels outside it, so at zero displacement the
composite is the image itself. The hole the layers leave is filled once (``cv2.inpaint``,
Telea, at reduced resolution, upsampled into the hole). Per frame only the rectangles the
layers cover are touched, in uint8: a sub-pixel ``warpAffine`` of the small RGBA patch, an
integer placement, ``cv2.blendLinear`` over the frame. Later masks are drawn over earlier
ones; the static region is pasted last, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .fill import fill_hole
from .geometry import bbox

__all__ = ["FEATHER_PX", "HOLE_GROW_PX", "BrushScene", "Layer", "fill_background", "make_layer"]

#: Width of the soft edge outside each dynamic mask, in output pixels.
FEATHER_PX = 3.0
#: The hole is the dynamic masks grown by this much: past the feather and the object's own soft edge.
HOLE_GROW_PX = int(FEATHER_PX) + 3


@dataclass(frozen=True)
class Layer:
    """A moving region: an RGBA patch cut at (x0, y0) and its (n, 2) displacement per frame."""

    patch: np.ndarray  # (h, w, 4) uint8: the image's RGB and the feathered alpha
    x0: int
    y0: int
    offsets: np.ndarray  # (n, 2) float64, output pixels


def make_layer(image: np.ndarray, mask: np.ndarray, offsets: np.ndarray, feather: float = FEATHER_PX) -> Layer | None:
    """Cut the layer of ``mask`` (output resolution) out of ``image``; None for an empty mask."""
    box = bbox(mask)
    if box is None:
        return None
    h, w = mask.shape
    pad = int(np.ceil(feather)) + 1
    x0, y0 = max(box[0] - pad, 0), max(box[1] - pad, 0)
    x1, y1 = min(box[2] + pad, w), min(box[3] + pad, h)
    sub = mask[y0:y1, x0:x1]
    # Distance of every pixel outside the mask to the mask; alpha 1 inside, 0 at `feather` px out.
    outside = np.where(sub, 0, 255).astype(np.uint8)
    dist = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    alpha = np.clip(1.0 - dist / feather, 0.0, 1.0)
    patch = np.dstack([image[y0:y1, x0:x1], np.round(alpha * 255).astype(np.uint8)])
    # One more transparent pixel all round (colour replicated) so sub-pixel shifts never darken an edge.
    patch = cv2.copyMakeBorder(patch, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    patch[[0, -1], :, 3] = 0
    patch[:, [0, -1], 3] = 0
    return Layer(patch=patch, x0=x0 - 1, y0=y0 - 1, offsets=np.asarray(offsets, dtype=np.float64))


def fill_background(base: np.ndarray, dynamic_masks: list[np.ndarray], static: np.ndarray | None) -> np.ndarray:
    """``base`` with the area the moving layers may uncover rebuilt from the background.

    The hole is the union of the masks grown by ``HOLE_GROW_PX``, minus the static region; patches
    come only from pixels outside every grown mask and outside the static region.
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

    def __init__(self, base: np.ndarray, static_mask: np.ndarray | None, dynamic_masks: list[np.ndarray],
                 offsets: list[np.ndarray]):
        # 1. Layers, in drawing order (later masks over earlier ones).
        self.base = base
        self.height, self.width = base.shape[:2]
        self.layers = [
            layer for layer in (make_layer(base, m, o) for m, o in zip(dynamic_masks, offsets)) if layer is not None
        ]
        # 2. Background: the union of the dynamic masks, grown past the layers' soft edge so no
        #    outline stays behind, filled once from the background only; static pixels kept.
        self.static = static_mask if static_mask is not None and static_mask.any() else None
        self.background = fill_background(base, dynamic_masks, self.static)
        self.static_box = bbox(self.static) if self.static is not None else None

    def frame(self, i: int) -> np.ndarray:
        """The composite at frame ``i`` (frame 0 is the base image exactly)."""
        if i == 0:
            return self.base.copy()
        out = self.background.copy()
        for layer in self.layers:
            box = self._draw(out, layer, layer.offsets[i])
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

    def _draw(self, out: np.ndarray, layer: Layer, offset: np.ndarray) -> tuple[int, int, int, int] | None:
        """Blend ``layer`` displaced by ``offset`` into ``out``; returns the touched box or None."""
        dx, dy = float(offset[0]), float(offset[1])
        ix, iy = int(np.floor(dx)), int(np.floor(dy))
        fx, fy = dx - ix, dy - iy
        patch = layer.patch
        if fx > 1e-6 or fy > 1e-6:
            ph, pw = patch.shape[:2]
            shift = np.float32([[1, 0, fx], [0, 1, fy]])
            patch = cv2.warpAffine(patch, shift, (pw + 1, ph + 1), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
        ph, pw = patch.shape[:2]
        x0, y0 = layer.x0 + ix, layer.y0 + iy
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + pw, self.width), min(y0 + ph, self.height)
        if cx0 >= cx1 or cy0 >= cy1:
            return None
        src = patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        dst = out[cy0:cy1, cx0:cx1]
        weight = cv2.multiply(src[..., 3], 1.0 / 255.0, dtype=cv2.CV_32F)
        blended = cv2.blendLinear(np.ascontiguousarray(src[..., :3]), dst, weight, 1.0 - weight)
        dst[...] = blended
        return cx0, cy0, cx1, cy1
