"""Tail image: the frames between the first and the last image, as a camera move plus a residual flow.

1. **Camera**: ORB features matched between the two images give a RANSAC similarity ``A`` (first
   image pixels to tail pixels). At time ``t`` the view is ``A^t`` (the similarity's power: the
   zoom changes geometrically about the move's fixed point, a pan moves at a constant rate), so a
   pan of a quarter frame or a 20 % zoom interpolates as the camera move it is.
2. **Residual**: the tail is warped into the first image's frame by ``A^-1``; DIS flow (MEDIUM, at
   ``FLOW_SCALE``) in both directions between the first image and the aligned tail carries what the
   camera does not (objects that move). A forward-backward check (``|f(x) + b(x + f(x))|`` below
   ``FB_TOLERANCE_PX`` plus 5 % of the motion) decides where the flow is trusted; the trust is
   smoothed and multiplies the flow, so untrusted places (occlusions, unrelated content) are not
   warped but cross-faded. A pair with little trusted area (``RELATED_MIN``) is treated as
   unrelated: a plain cross-fade.
3. **Blend**: the first image warped ``t`` of the way and the tail ``1 - t`` of the way back are
   mixed with the tail weight ``blend_weight(t)`` (0 until ``t`` = 0.3, smoothstep to 1 at 0.7),
   except where one of them has no picture (content entering or leaving at the frame edges): there
   the other image takes over, feathered over ``EDGE_FEATHER_PX``.

Per frame, the two sampling maps and the weight are built on a coarse grid (``GRID``) and
interpolated to full resolution (the camera part is affine, which the interpolation reproduces
exactly); the warps sample 2x-upsampled sources so bilinear sampling does not blur them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from .warp_regions import edge_strips, row_bands

__all__ = ["BLEND_MARGIN", "FLOW_SCALE", "TailScene", "blend_weight", "dense_flow", "similarity_power"]

#: Resolution of the residual flow relative to the output.
FLOW_SCALE = 0.5
#: The tail's blend weight stays 0 for t below this, and 1 above 1 minus this.
BLEND_MARGIN = 0.3
#: Sampling maps are built every GRID output pixels and interpolated.
GRID = 8
#: Forward-backward error (flow-scale pixels) under which the residual flow is trusted.
FB_TOLERANCE_PX = 1.0
#: Below this trusted fraction of the frame (with fewer than MIN_INLIERS matches) the pair is unrelated.
RELATED_MIN = 0.35
MIN_INLIERS = 25
#: Index of output pixel 0 in the grid resized by GRID (node k at (k - 1) * GRID + 0.5).
_OFFSET = (3 * GRID) // 2 - 1
#: A residual flow whose 99th percentile is below this (output px) is left out: the camera explains the pair.
RESIDUAL_MIN_PX = 0.25
#: Where the residual moves a pixel by less than this (output px: a quarter pixel, invisible) the warp is the
#: camera's alone.
RESIDUAL_EPS_PX = 0.25
#: Residuals are kept in full above RESIDUAL_KEEP_PX and faded out below it, to nothing at half that
#: (output px). DIS noise on a pure camera move (the rocket zoomed x1.06 and shifted; both ways, away
#: from the edge of the tail's view) measured median 0.10, 99th percentile 0.33 and 99.9th 0.43 px:
#: kept, it spread composed remaps over whole frames for nothing anyone can see.
RESIDUAL_KEEP_PX = 1.0
#: Flow within this many flow pixels of the edge of the tail's view is not trusted: DIS smooths over
#: that edge (the aligned tail is border-replicated there), which gave 1-3 px of false residual along it.
VIEW_EDGE_MARGIN = 8
#: Width of the fade where one image runs out of picture at a frame edge.
EDGE_FEATHER_PX = 24.0
#: Per-pixel weights closer than this to the frame's uniform weight are blended as uniform: it moves a
#: pixel by at most half a grey level (sub-pixel camera fits gave 0.999 weights along whole edges, and
#: with them per-pixel blending on strips up to 176 px deep: 64 % of a 1280 x 720 frame of the pan).
WEIGHT_EPS = 0.5 / 255.0


def blend_weight(t: float) -> float:
    """Weight of the (warped) tail image at time ``t``: smoothstep over [BLEND_MARGIN, 1 - BLEND_MARGIN]."""
    x = min(max((t - BLEND_MARGIN) / (1.0 - 2.0 * BLEND_MARGIN), 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def dense_flow(a: np.ndarray, b: np.ndarray, scale: float = FLOW_SCALE) -> np.ndarray:
    """(h, w, 2) float32 flow from gray ``a`` to gray ``b`` (``a(x) ~ b(x + flow(x))``) at ``scale``, in scaled px."""
    h, w = a.shape[:2]
    sw, sh = max(round(w * scale), 16), max(round(h * scale), 16)
    ga = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
    gb = cv2.resize(b, (sw, sh), interpolation=cv2.INTER_AREA)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow: np.ndarray = dis.calc(ga, gb, None)
    return flow


def similarity_power(m: np.ndarray, t: float) -> np.ndarray:
    """The 2 x 3 similarity ``m`` raised to the power ``t`` (``m^0`` identity, ``m^1 = m``).

    With ``z -> a z + b`` in complex form, ``m^t`` is ``z -> a^t z + b (1 - a^t) / (1 - a)``: the
    scale changes geometrically, the angle linearly, and the fixed point stays fixed.
    """
    a = complex(m[0, 0], m[1, 0])
    b = complex(m[0, 2], m[1, 2])
    at = np.exp(t * np.log(a)) if abs(a) > 0 else 0j
    bt = b * t if abs(a - 1) < 1e-9 else b * (1 - at) / (1 - a)
    return np.asarray([[at.real, -at.imag, bt.real], [at.imag, at.real, bt.imag]], dtype=np.float64)


def _invert(m: np.ndarray) -> np.ndarray:
    inverse: np.ndarray = cv2.invertAffineTransform(np.asarray(m, dtype=np.float64))
    return inverse


def _camera(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, int]:
    """(2 x 3 similarity first -> last, inliers); the identity when the images do not match."""
    # Features on half-resolution images (4x cheaper); the fit is refined on the inliers and the
    # residual flow takes what a sub-pixel error leaves.
    half = 0.5 if min(first.shape[:2]) >= 480 else 1.0
    small0 = cv2.resize(first, None, fx=half, fy=half, interpolation=cv2.INTER_AREA) if half < 1 else first
    small1 = cv2.resize(last, None, fx=half, fy=half, interpolation=cv2.INTER_AREA) if half < 1 else last
    orb = cv2.ORB_create(1500, fastThreshold=12)
    ka, da = orb.detectAndCompute(small0, None)
    kb, db = orb.detectAndCompute(small1, None)
    ident = np.asarray([[1, 0, 0], [0, 1, 0]], dtype=np.float64)
    if da is None or db is None or len(ka) < MIN_INLIERS or len(kb) < MIN_INLIERS:
        return ident, 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(da, db, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < MIN_INLIERS:
        return ident, 0
    # Keypoint coordinates back to full-resolution pixels (area resize: x = (x_half + 0.5) / half - 0.5).
    src = (np.asarray([ka[g.queryIdx].pt for g in good], dtype=np.float32) + 0.5) / half - 0.5
    dst = (np.asarray([kb[g.trainIdx].pt for g in good], dtype=np.float32) + 0.5) / half - 0.5
    m, inl = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0, maxIters=4000, confidence=0.999, refineIters=20
    )
    del small0, small1
    count = int(inl.sum()) if inl is not None else 0
    if m is None or count < MIN_INLIERS:
        return ident, count
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    if not 0.5 < scale < 2.0:
        return ident, count
    return np.asarray(m, dtype=np.float64), count


class TailScene:
    """``frame(t)`` for t in [0, 1]; t = 0 and t = 1 return the two images exactly."""

    def __init__(self, first: np.ndarray, last: np.ndarray):
        if first.shape != last.shape:
            raise ValueError(f"first and last images differ in shape: {first.shape} vs {last.shape}")
        self.first, self.last = first, last
        self.identical = bool(np.array_equal(first, last))
        self.camera = np.asarray([[1, 0, 0], [0, 1, 0]], dtype=np.float64)
        self.related = True
        self.trusted = 1.0
        if self.identical:
            return
        h, w = first.shape[:2]
        self.height, self.width = h, w
        g0 = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(last, cv2.COLOR_RGB2GRAY)
        # 1. Camera move; 2. residual flows both ways (tail aligned by the camera) with their
        #    forward-backward trust. The camera is then refined by a similarity fitted to the
        #    trusted forward residual (features give it to a few tenths of a pixel, the dense flow
        #    to a few hundredths) and the refinement taken out of both residuals, so a pure camera
        #    move has none left. (Measuring the flows again after the refinement cost a third
        #    DIS pass for a difference far below RESIDUAL_KEEP_PX: the refinement is sub-pixel.)
        self.camera, self.inliers = _camera(g0, g1)
        fwd, bwd, trust01, trust10 = _residual(g0, g1, self.camera)
        if self.inliers >= MIN_INLIERS:  # RANSAC drops what the camera does not explain
            fix = _fit_similarity(fwd, trust01, w, h)
            if fix is not None:
                self.camera = _compose(self.camera, fix)
                fwd, bwd = _refer(fwd, bwd, fix, w, h)
        self.trusted = float(trust01.mean())
        self.related = self.inliers >= MIN_INLIERS or self.trusted >= RELATED_MIN
        if not self.related:
            trust01[:] = 0.0
            trust10[:] = 0.0
        # 3. Residuals as coarse fields in output pixels, scaled by trust; grid coordinates.
        gw, gh = -(-w // GRID) + 3, -(-h // GRID) + 3  # one cell beyond every edge
        self._gw, self._gh = gw, gh
        gx = (np.arange(gw, dtype=np.float32) - 1) * GRID + np.float32(0.5)
        gy = (np.arange(gh, dtype=np.float32) - 1) * GRID + np.float32(0.5)
        self._gxy = np.dstack(np.meshgrid(gx, gy))  # (gh, gw, 2) output coordinates of the grid
        self._depth = np.clip(_depth(self._gxy, w, h), 0.0, EDGE_FEATHER_PX).astype(np.float32)
        self._fwd = _quiet(_to_output(fwd * _soft(trust01)[..., None], w, h))
        self._bwd = _quiet(_to_output(bwd * _soft(trust10)[..., None], w, h))
        # Sources at 2x (coordinates x 2), RGBA: remap is ~2.5x faster on 4 channels than on 3.
        self._first2 = _upsample2(cv2.cvtColor(first, cv2.COLOR_RGB2RGBA))
        self._last2: np.ndarray | None = None
        # Without a residual worth warping (< RESIDUAL_MIN_PX everywhere) each warp is one warpAffine.
        motion = np.hypot(*np.concatenate([self._fwd, self._bwd]).reshape(-1, 2).T)
        self._residual = bool(np.percentile(motion, 99) >= RESIDUAL_MIN_PX)
        self._both = np.ascontiguousarray(np.dstack([self._fwd, self._bwd]))  # one remap samples both
        self._out = np.empty((h, w, 4), np.uint8)
        self._other = np.empty((h, w, 4), np.uint8)
        self._mixed = np.empty((h, w, 4), np.uint8)

    def describe(self) -> str:
        """One log line: what the scene found."""
        if self.identical:
            return "tail image equals the image: seamless loop"
        m = self.camera
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
        if not self.related:
            return f"tail: images unrelated ({self.inliers} feature matches): cross-fade"
        return (
            f"tail: camera move zoom x{scale:.3f}, content shift ({m[0, 2]:+.0f}, {m[1, 2]:+.0f}) px, "
            f"roll {angle:+.1f} deg from {self.inliers} feature matches; residual flow trusted on "
            f"{100 * self.trusted:.0f} % of the frame"
        )

    def frame(self, t: float) -> np.ndarray:
        if t <= 0.0 or self.identical:
            return self.first.copy()
        if t >= 1.0:
            return self.last.copy()
        h, w = self.height, self.width
        wt = blend_weight(t)
        # Camera at time t: frame pixel p shows first-image point x = A_t^-1 p, tail point A^(1-t) p.
        to_first = _invert(similarity_power(self.camera, t))
        to_tail = similarity_power(self.camera, 1.0 - t)
        map0 = _apply(to_first, self._gxy)
        map1 = _apply(to_tail, self._gxy)
        cells0 = cells1 = None
        if self._residual:
            # First side: x - t r01(x); tail side: A (x - (1 - t) r10(x)) = A^(1-t) p - (1-t) A_lin r10(x).
            both = _sample(self._both, map0, w, h)
            r01, r10 = both[..., :2], both[..., 2:]
            lin = np.asarray(self.camera[:, :2], dtype=np.float32)
            map0 -= np.float32(t) * r01
            map1 -= np.float32(1.0 - t) * (r10 @ lin.T)
            # Warps are affine (the camera) except on the row bands around the cells where the residual
            # moves a pixel by more than RESIDUAL_EPS_PX; there the full sampling map is used.
            cells0 = np.hypot(r01[..., 0], r01[..., 1]) * t > RESIDUAL_EPS_PX
            cells1 = np.hypot(r10[..., 0], r10[..., 1]) * (1.0 - t) > RESIDUAL_EPS_PX
        # Where one image has no picture the other takes over: the tail weight is at least
        # 1 - e0 and at most e1 (e: 1 inside the picture, 0 outside, feathered at the edge).
        e0 = _edge_weight(map0, self._depth, w, h)
        e1 = _edge_weight(map1, self._depth, w, h)
        lo_w, hi_w = 1.0 - e0, e1
        weight = np.where(lo_w <= hi_w, np.clip(np.float32(wt), lo_w, hi_w), np.float32(wt)).astype(np.float32)
        affine0, affine1 = 2.0 * to_first, 2.0 * to_tail
        if wt > 0.0 or float(weight.max()) > WEIGHT_EPS:
            self._tail_ready()
        full = (0, 0, w, h)
        out, other = self._out, self._other
        # The image with the larger uniform weight is warped whole; the other one only where needed.
        if wt <= 0.0:
            self._warp(self._first2, map0, affine0, cells0, full, out)
            self._mix(out, other, self._last2, map1, affine1, cells1, weight, weight > WEIGHT_EPS)
        elif wt >= 1.0:
            self._warp(self._last2, map1, affine1, cells1, full, out)
            self._mix(out, other, self._first2, map0, affine0, cells0, 1.0 - weight, weight < 1.0 - WEIGHT_EPS)
        else:
            self._warp(self._first2, map0, affine0, cells0, full, other)
            self._warp(self._last2, map1, affine1, cells1, full, out)
            mixed = self._mixed
            cv2.addWeighted(other, 1.0 - wt, out, wt, 0.0, dst=mixed)
            for x0, y0, x1, y1 in edge_strips(np.abs(weight - np.float32(wt)) > WEIGHT_EPS, GRID, w, h):
                # per-pixel weights near the edges, from the two pure warps
                a = np.ascontiguousarray(self._upsample(weight, (x0, y0, x1, y1)))
                mixed[y0:y1, x0:x1] = cv2.blendLinear(other[y0:y1, x0:x1], out[y0:y1, x0:x1], 1.0 - a, a)
            out = mixed
        rgb: np.ndarray = cv2.cvtColor(out, cv2.COLOR_RGBA2RGB)
        return rgb

    def _tail_ready(self) -> None:
        if self._last2 is None:
            self._last2 = _upsample2(cv2.cvtColor(self.last, cv2.COLOR_RGB2RGBA))

    def _mix(
        self,
        out: np.ndarray,
        buf: np.ndarray,
        source2: np.ndarray | None,
        grid_map: np.ndarray,
        affine: np.ndarray,
        moving: np.ndarray | None,
        share: np.ndarray,
        cells: np.ndarray,
    ) -> None:
        """Warp ``source2`` on strips around ``cells`` into ``buf`` and mix it into ``out`` by ``share``."""
        strips = edge_strips(cells, GRID, self.width, self.height)
        if not strips:
            return
        share = np.ascontiguousarray(share)
        for x0, y0, x1, y1 in strips:
            self._warp(source2, grid_map, affine, moving, (x0, y0, x1, y1), buf)
            a = np.ascontiguousarray(self._upsample(share, (x0, y0, x1, y1)))  # the strip's weights only
            dst = out[y0:y1, x0:x1]
            dst[...] = cv2.blendLinear(buf[y0:y1, x0:x1], dst, a, 1.0 - a)

    def _upsample(self, grid: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
        """The grid field interpolated (bilinear) at the output pixels of ``roi``.

        Grid node k sits at output coordinate (k - 1) * GRID + 0.5, so a plain ``resize`` by GRID
        (half-pixel centres) of the nodes from k0 on puts output pixel p at index
        p - k0 * GRID + _OFFSET: exact for affine fields. Only the nodes around ``roi`` are resized.
        """
        x0, y0, x1, y1 = roi
        kx0, ky0 = x0 // GRID, y0 // GRID
        kx1 = min(self._gw, -(-(x1 + _OFFSET + GRID) // GRID) + 1)
        ky1 = min(self._gh, -(-(y1 + _OFFSET + GRID) // GRID) + 1)
        sub = np.ascontiguousarray(grid[ky0:ky1, kx0:kx1])
        big: np.ndarray = cv2.resize(sub, ((kx1 - kx0) * GRID, (ky1 - ky0) * GRID), interpolation=cv2.INTER_LINEAR)
        ox, oy = _OFFSET - kx0 * GRID, _OFFSET - ky0 * GRID
        return big[y0 + oy : y1 + oy, x0 + ox : x1 + ox]

    def _warp(
        self,
        source2: np.ndarray | None,
        grid_map: np.ndarray,
        affine: np.ndarray,
        moving: np.ndarray | None,
        roi: tuple[int, int, int, int],
        dst: np.ndarray,
    ) -> None:
        """Warp the 2x source into ``dst[roi]``: by ``affine`` (output -> 2x source) on the row bands
        the residual does not reach, by the grid map (camera and residual composed, one remap per
        band) on the bands around the ``moving`` cells."""
        assert source2 is not None
        x0, y0, x1, y1 = roi
        grid2 = None
        for ya, yb, composed in row_bands(moving, y0, y1, GRID):
            if not composed:
                m = np.asarray(affine, dtype=np.float64).copy()
                m[:, 2] += m[:, :2] @ np.asarray([x0, ya], dtype=np.float64)
                cv2.warpAffine(
                    source2,
                    m,
                    (x1 - x0, yb - ya),
                    dst=dst[ya:yb, x0:x1],
                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                    borderMode=cv2.BORDER_REPLICATE,
                )
                continue
            if grid2 is None:
                grid2 = grid_map * np.float32(2.0)
            # A float map of a whole band costs about what warpAffine does (2.2 vs 2.0 ms for a
            # 1280 x 720 RGBA frame, one thread), far less than many small remaps on tiles.
            part = self._upsample(grid2, (x0, ya, x1, yb))
            cv2.remap(source2, part, None, cv2.INTER_LINEAR, dst=dst[ya:yb, x0:x1], borderMode=cv2.BORDER_REPLICATE)


def _residual(g0: np.ndarray, g1: np.ndarray, camera: np.ndarray) -> tuple[np.ndarray, ...]:
    """Flows first -> aligned tail and back (flow scale) and their trust (0 outside the tail's view)."""
    h, w = g0.shape[:2]
    aligned = cv2.warpAffine(
        g1, camera, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    with ThreadPoolExecutor(max_workers=1) as pool:  # the two passes side by side (DIS releases the GIL)
        later = pool.submit(dense_flow, aligned, g0)
        fwd = dense_flow(g0, aligned)
        bwd = later.result()
    inside = _inside_mask(camera, fwd.shape[1], fwd.shape[0], w, h)
    k = 2 * VIEW_EDGE_MARGIN + 1
    inside = cv2.erode(inside, np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return fwd, bwd, _consistency(fwd, bwd) * inside, _consistency(bwd, fwd) * inside


def _fit_similarity(flow: np.ndarray, trust: np.ndarray, w: int, h: int) -> np.ndarray | None:
    """Similarity (output pixels) taking x to x + flow(x), fitted (RANSAC) on trusted flow pixels."""
    fh, fw = flow.shape[:2]
    ys, xs = np.nonzero(trust[::4, ::4] > 0.5)
    if len(xs) < 50:
        return None
    ys, xs = ys * 4, xs * 4
    sx, sy = w / fw, h / fh
    src = np.stack([(xs + 0.5) * sx - 0.5, (ys + 0.5) * sy - 0.5], axis=1).astype(np.float32)
    dst = src + flow[ys, xs] * np.asarray([sx, sy], dtype=np.float32)
    m, inl = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=0.75, maxIters=500, refineIters=20
    )
    if m is None or inl is None or int(inl.sum()) < 50:
        return None
    return np.asarray(m, dtype=np.float64)


def _refer(fwd: np.ndarray, bwd: np.ndarray, fix: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """The residual flows (flow px) re-referred to the camera composed with the small similarity ``fix``.

    The tail aligned by the refined camera is the old aligned tail sampled at ``fix(x)``, so to
    first order the forward flow loses ``fix(x) - x`` and the backward flow gains it.
    """
    fh, fw = fwd.shape[:2]
    sx, sy = w / fw, h / fh
    gx, gy = np.meshgrid(
        (np.arange(fw, dtype=np.float32) + 0.5) * sx - 0.5, (np.arange(fh, dtype=np.float32) + 0.5) * sy - 0.5
    )
    xy = np.dstack([gx, gy])
    shift = (_apply(fix, xy) - xy) / np.asarray([sx, sy], dtype=np.float32)
    return fwd - shift, bwd + shift


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2 x 3 affine map x -> outer(inner(x))."""
    lin = outer[:, :2] @ inner[:, :2]
    return np.hstack([lin, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def _apply(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    mm = np.asarray(m, dtype=np.float32)
    return (xy @ mm[:, :2].T + mm[:, 2]).astype(np.float32)


def _to_output(flow: np.ndarray, w: int, h: int) -> np.ndarray:
    """Flow stored at flow resolution, its vectors rescaled to output pixels."""
    out = flow.copy()
    out[..., 0] *= w / flow.shape[1]
    out[..., 1] *= h / flow.shape[0]
    return out


def _sample(field: np.ndarray, xy: np.ndarray, w: int, h: int) -> np.ndarray:
    """``field`` (stored at flow resolution for a w x h output) sampled at output coordinates ``xy``."""
    fh, fw = field.shape[:2]
    mx = (xy[..., 0] + np.float32(0.5)) * np.float32(fw / w) - np.float32(0.5)
    my = (xy[..., 1] + np.float32(0.5)) * np.float32(fh / h) - np.float32(0.5)
    sampled: np.ndarray = cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled


def _consistency(f: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 where ``b`` brings ``f`` back to its start: ``|f(x) + b(x + f(x))| < tol + 5 % |f(x)|``."""
    fh, fw = f.shape[:2]
    gx, gy = np.meshgrid(np.arange(fw, dtype=np.float32), np.arange(fh, dtype=np.float32))
    back: np.ndarray = cv2.remap(b, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err: np.ndarray = np.hypot(*(f + back).transpose(2, 0, 1))
    motion: np.ndarray = np.hypot(*f.transpose(2, 0, 1))
    return (err < FB_TOLERANCE_PX + 0.05 * motion).astype(np.float32)


def _inside_mask(m: np.ndarray, fw: int, fh: int, w: int, h: int) -> np.ndarray:
    """1 where the first-image point of a flow pixel is inside the tail's frame under the camera ``m``."""
    gx, gy = np.meshgrid(
        (np.arange(fw, dtype=np.float32) + 0.5) * (w / fw) - 0.5,
        (np.arange(fh, dtype=np.float32) + 0.5) * (h / fh) - 0.5,
    )
    t = _apply(m, np.dstack([gx, gy]))
    return ((t[..., 0] >= 0) & (t[..., 0] <= w - 1) & (t[..., 1] >= 0) & (t[..., 1] <= h - 1)).astype(np.float32)


def _quiet(flow: np.ndarray) -> np.ndarray:
    """``flow`` (output px) with vectors shorter than RESIDUAL_KEEP_PX faded out (smoothstep from half of it)."""
    length = np.hypot(flow[..., 0], flow[..., 1])
    x = np.clip(length / np.float32(0.5 * RESIDUAL_KEEP_PX) - 1.0, 0.0, 1.0)
    quiet: np.ndarray = (flow * (x * x * (3.0 - 2.0 * x))[..., None]).astype(np.float32)
    return quiet


def _soft(trust: np.ndarray) -> np.ndarray:
    """Trust smoothed (Gaussian, sigma 2 flow pixels) so flow and cross-fade areas meet without a seam."""
    smooth: np.ndarray = cv2.GaussianBlur(trust, (0, 0), 2.0)
    return smooth


def _depth(xy: np.ndarray, w: int, h: int) -> np.ndarray:
    """Distance of the points ``xy`` inside the w x h picture from its nearest edge (negative outside)."""
    x, y = xy[..., 0], xy[..., 1]
    near: np.ndarray = np.minimum(np.minimum(x + 0.5, w - 0.5 - x), np.minimum(y + 0.5, h - 0.5 - y))
    return near


def _edge_weight(xy: np.ndarray, pixel_depth: np.ndarray, w: int, h: int) -> np.ndarray:
    """How much of a picture there is at the sample points ``xy`` of output points at ``pixel_depth``.

    0 outside the w x h picture. Inside, 1 when the sample is at least as far from the picture's
    edge as the output point is from the frame's edge (the picture covers the frame there), else
    falling to 0 at the picture's edge over EDGE_FEATHER_PX: a fade only where a picture runs out.
    ``pixel_depth`` is the output points' :func:`_depth` clipped to [0, EDGE_FEATHER_PX].
    """
    ds = _depth(xy, w, h)
    e = np.clip(1.0 - (pixel_depth - ds) / np.float32(EDGE_FEATHER_PX), 0.0, 1.0)
    e[ds < 0.0] = 0.0
    weight: np.ndarray = e.astype(np.float32, copy=False)
    return weight


#: Bicubic weights (a = -0.75, as OpenCV's INTER_CUBIC) for the value half-way between two pixels.
_HALF = np.asarray([-3.0, 19.0, 19.0, -3.0], dtype=np.float32) / 32.0
_ONE = np.asarray([1.0], dtype=np.float32)


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
