"""Layers that are the object: a loosely painted mask refined to the object's edges, with a soft alpha.

1. **Trimap from the brush**: the painted mask eroded by ``BAND_PX`` is certainly the object;
   farther than ``GROW_PX`` outside it is certainly not; in between is decided by the picture.
2. **GrabCut** (OpenCV's colour-model graph cut) labels that band, on a crop around the mask at a
   resolution where the crop has at most ``GRABCUT_PX`` pixels (upsampled labels, refined below).
   If the cut keeps less than ``KEEP_MIN`` of the painted area, the painted mask is used as is (a
   mask painted over something with no edge to snap to).
3. **Alpha matte**: a guided filter (He et al., gray guide, radius ``MATTE_RADIUS``) of the hard
   cut follows the picture's edges and gives a soft alpha; it is exactly 1 on the certain object
   and 0 beyond ``GROW_PX`` + ``MATTE_RADIUS`` outside the cut.
4. **Foreground colour**: on the soft edge a pixel mixes object and background
   (``I = a F + (1 - a) B``); with ``B`` the filled background, ``F = (I - (1 - a) B) / a`` so the
   moved layer does not carry the old background's colour along.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import bbox

__all__ = ["BAND_PX", "GROW_PX", "Matte", "foreground_colour", "guided_filter", "refine"]

#: How far inside the painted edge the picture may decide (output pixels at 720p, scaled).
BAND_PX = 24
#: How far outside the painted edge the object may extend.
GROW_PX = 4
#: GrabCut runs on at most this many pixels (the crop is shrunk to fit).
GRABCUT_PX = 12_000
GRABCUT_ITERS = 2
#: Seed of OpenCV's RNG for GrabCut: the same request always gives the same frames.
GRABCUT_SEED = 12345
#: The cut must keep at least this fraction of the painted area, else the painted mask is kept.
KEEP_MIN = 0.6
MATTE_RADIUS = 3
MATTE_EPS = 2e-3


@dataclass(frozen=True)
class Matte:
    """A refined dynamic region: soft alpha in [0, 1] on the crop at (x0, y0), and how it was made."""

    alpha: np.ndarray  # (h, w) float32
    x0: int
    y0: int
    refined: bool  # False: the painted mask was kept

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        out = np.zeros(shape, np.float32)
        h, w = self.alpha.shape
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.alpha
        return out


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` (float32) steered by the gray ``guide`` (float32, 0..1)."""
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        mean: np.ndarray = cv2.boxFilter(x, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
        return mean

    mean_i, mean_p = box(guide), box(src)
    var_i = box(guide * guide) - mean_i * mean_i
    cov = box(guide * src) - mean_i * mean_p
    a = cov / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    smooth: np.ndarray = box(a) * guide + box(b)
    return smooth


def refine(image: np.ndarray, painted: np.ndarray) -> Matte | None:
    """The alpha matte of the object under the ``painted`` mask (output resolution); None if empty."""
    box = bbox(painted)
    if box is None:
        return None
    h, w = painted.shape
    scale = min(h, w) / 720.0
    band = max(2, round(BAND_PX * scale))
    grow = max(1, round(GROW_PX * scale))
    pad = grow + MATTE_RADIUS + 2
    x0, y0 = max(box[0] - pad, 0), max(box[1] - pad, 0)
    x1, y1 = min(box[2] + pad, w), min(box[3] + pad, h)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    mask = painted[y0:y1, x0:x1].astype(np.uint8)
    cut = _grabcut(crop, mask, band, grow)
    refined = cut is not None and cut.sum() >= KEEP_MIN * mask.sum()
    hard = cut if refined and cut is not None else mask.astype(bool)
    guide = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32) / np.float32(255.0)
    alpha = np.clip(guided_filter(guide, hard.astype(np.float32), MATTE_RADIUS, MATTE_EPS), 0.0, 1.0)
    # Exactly opaque on the certain object, exactly transparent beyond the reach of the filter.
    core = _erode(hard, 2)
    reach = _dilate(hard, MATTE_RADIUS + 1)
    alpha[core] = 1.0
    alpha[~reach] = 0.0
    return Matte(alpha=alpha.astype(np.float32), x0=x0, y0=y0, refined=bool(refined))


def foreground_colour(image: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The object's own colour under a soft ``alpha``: ``(I - (1 - a) B) / a`` (a >= 0.2), else ``I``."""
    a = alpha[..., None]
    solve = (a > 0.2) & (a < 0.98)
    f = (image.astype(np.float32) - (1.0 - a) * background.astype(np.float32)) / np.maximum(a, 0.2)
    out = np.where(solve, np.clip(f, 0, 255), image.astype(np.float32))
    return np.rint(out).astype(np.uint8)


def _grabcut(crop: np.ndarray, mask: np.ndarray, band: int, grow: int) -> np.ndarray | None:
    """Hard object mask on ``crop`` from GrabCut seeded by the painted ``mask``; None if it cannot run."""
    sure_fg = _erode(mask.astype(bool), band)
    maybe = _dilate(mask.astype(bool), grow)
    if sure_fg.sum() < 16 or (~maybe).sum() < 16:
        return None
    labels = np.full(mask.shape, cv2.GC_BGD, np.uint8)
    labels[maybe] = cv2.GC_PR_BGD
    labels[mask.astype(bool)] = cv2.GC_PR_FGD
    labels[sure_fg] = cv2.GC_FGD
    h, w = mask.shape
    f = min(1.0, float(np.sqrt(GRABCUT_PX / (h * w))))
    small_img, small_lab = crop, labels
    if f < 1.0:
        size = (max(round(w * f), 8), max(round(h * f), 8))
        small_img = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        small_lab = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(GRABCUT_SEED)  # GrabCut's k-means start draws from this thread's OpenCV RNG
    try:
        cv2.grabCut(
            cv2.cvtColor(small_img, cv2.COLOR_RGB2BGR), small_lab, None, bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_MASK
        )
    except cv2.error:
        return None
    fg: np.ndarray = (small_lab == cv2.GC_FGD) | (small_lab == cv2.GC_PR_FGD)
    if f < 1.0:
        fg = cv2.resize(fg.astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR) > 0
    # The certain parts stay certain whatever the cut says (and at full resolution).
    cut: np.ndarray = (fg | sure_fg) & maybe
    return cut


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    eroded: np.ndarray = cv2.erode(mask.astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return eroded


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    dilated: np.ndarray = cv2.dilate(mask.astype(np.uint8), k) > 0
    return dilated
