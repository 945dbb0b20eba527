"""Measurements for motion-engine tests, written independently of the engine (imports none of it).

Frame 0 / last-frame fidelity (PSNR), static-region stability, trajectory following (pyramidal
Lucas-Kanade with a forward-backward check), luma flicker, sharpness (Laplacian variance), and
the documented timing law recomputed from its description.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "best_crossfade",
    "documented_resize",
    "expected_offsets",
    "gradient_energy",
    "gray",
    "input_to_output_points",
    "laplacian_variance",
    "luma_jitter",
    "polyline_length",
    "psnr",
    "ring",
    "sharpness",
    "static_change",
    "track_offsets",
    "turn_angles",
    "view_change",
]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def documented_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The resize the engine documents: INTER_AREA when shrinking, INTER_CUBIC when enlarging."""
    w, h = size
    shrink = w * h < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def static_change(frames: Sequence[np.ndarray], mask: np.ndarray, erode_px: int = 4) -> float:
    """Mean |gray_t - gray_{t-1}| (gray levels) over the eroded mask, over all consecutive pairs."""
    region = _erode(mask, erode_px)
    assert region.sum() > 100, "static region too small to measure"
    total = 0.0
    prev = gray(frames[0]).astype(np.float32)
    for f in frames[1:]:
        cur = gray(f).astype(np.float32)
        total += float(np.abs(cur - prev)[region].mean())
        prev = cur
    return total / (len(frames) - 1)


def luma_jitter(frames: Sequence[np.ndarray]) -> float:
    """Standard deviation of the second difference of mean frame luma (BT.601)."""
    y = np.array([float((f.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).mean()) for f in frames])
    return float(np.std(np.diff(y, n=2)))


def sharpness(frame: np.ndarray) -> float:
    """Variance of the Laplacian of the gray image."""
    return float(cv2.Laplacian(gray(frame).astype(np.float64), cv2.CV_64F, ksize=3).var())


def track_offsets(
    frames: Sequence[np.ndarray], mask: np.ndarray, erode_px: int = 4, fb_max: float = 0.5
) -> tuple[np.ndarray, int]:
    """Per-frame median displacement (n, 2) of features found in the eroded ``mask`` on frame 0.

    Features (``goodFeaturesToTrack``) are tracked frame to frame with pyramidal Lucas-Kanade;
    a feature is dropped for good once its forward-backward error exceeds ``fb_max`` px.
    Returns the offsets and the number of features alive at the end.
    """
    region = (_erode(mask, erode_px) * 255).astype(np.uint8)
    prev = gray(frames[0])
    start = cv2.goodFeaturesToTrack(prev, maxCorners=300, qualityLevel=0.01, minDistance=4, mask=region)
    assert start is not None and len(start) >= 20, "too few features in the region"
    start = start.reshape(-1, 2).astype(np.float32)
    cur = start.copy()
    alive = np.ones(len(start), bool)
    params = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 0.01))
    offsets = [np.zeros(2)]
    for f in frames[1:]:
        nxt_gray = gray(f)
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, nxt_gray, cur, None, **params)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(nxt_gray, prev, nxt, None, **params)
        fb = np.linalg.norm(back - cur, axis=1)
        alive &= (st.ravel() == 1) & (st2.ravel() == 1) & (fb < fb_max)
        assert alive.sum() >= 5, "lost the tracked features"
        cur, prev = nxt, nxt_gray
        offsets.append(np.median(cur[alive] - start[alive], axis=0))
    return np.array(offsets), int(alive.sum())


def input_to_output_points(
    points: Sequence[tuple[float, float]], in_size: tuple[int, int], out_size: tuple[int, int]
) -> np.ndarray:
    """Kling trajectory points (input pixels, origin bottom-left, y up) in output pixels (top-left, y down)."""
    in_w, in_h = in_size
    out_w, out_h = out_size
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[:, 0] * out_w / in_w, (in_h - p[:, 1]) * out_h / in_h], axis=1)


def polyline_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def expected_offsets(points: np.ndarray, n: int, ramp: float = 0.25) -> np.ndarray:
    """Displacement from the first point at each of ``n`` frames under the documented law.

    Speed ramps linearly from 0 over the first ``ramp`` of the clip, is constant, and ramps
    back to 0 over the last ``ramp``; the distance covered is a fraction of the arc length.
    """
    out = []
    seglen = np.linalg.norm(np.diff(points, axis=0), axis=1)
    total = seglen.sum()
    peak = 1.0 / (1.0 - ramp)  # speed in the middle, in path fractions per unit time
    for i in range(n):
        u = i / (n - 1)
        if u <= ramp:
            frac = 0.5 * peak * u * u / ramp
        elif u >= 1 - ramp:
            frac = 1.0 - 0.5 * peak * (1 - u) ** 2 / ramp
        else:
            frac = 0.5 * peak * ramp + peak * (u - ramp)
        dist = frac * total
        # Walk the polyline to arc length `dist`.
        pos = points[-1].astype(np.float64)
        for k, length in enumerate(seglen):
            if dist <= length and length > 0:
                pos = points[k] + (points[k + 1] - points[k]) * (dist / length)
                break
            dist -= length
        out.append(pos - points[0])
    return np.array(out)


def view_change(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """(scale, angle_deg ccw on screen, dx, dy) of the similarity mapping frame ``a``'s content to ``b``.

    ``dx, dy`` is where ``a``'s centre lands in ``b`` minus the centre. Estimated from ORB matches with RANSAC.
    """
    orb = cv2.ORB_create(2000)
    ka, da = orb.detectAndCompute(gray(a), None)
    kb, db = orb.detectAndCompute(gray(b), None)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    src = np.float32([ka[m.queryIdx].pt for m in matches])
    dst = np.float32([kb[m.trainIdx].pt for m in matches])
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    assert m is not None and inliers.sum() >= 20, "could not relate the two frames"
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    angle = float(np.degrees(np.arctan2(-m[1, 0], m[0, 0])))  # y points down: negate for on-screen ccw
    h, w = a.shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    moved = m[:, :2] @ c + m[:, 2]
    return scale, angle, float(moved[0] - c[0]), float(moved[1] - c[1])


def laplacian_variance(frame: np.ndarray, region: np.ndarray) -> float:
    """Variance of the gray Laplacian (3 x 3) over ``region``: how much fine texture there is."""
    lap = cv2.Laplacian(gray(frame).astype(np.float64), cv2.CV_64F, ksize=3)
    return float(lap[region].var())


def ring(mask: np.ndarray, inner_px: int, outer_px: int) -> np.ndarray:
    """Pixels between ``inner_px`` and ``outer_px`` (inclusive) outside ``mask`` (Euclidean distance)."""
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    return (dist >= inner_px) & (dist <= outer_px + 0.5)


def gradient_energy(frame: np.ndarray) -> float:
    """Mean squared Sobel gradient of the gray frame."""
    g = gray(frame).astype(np.float64)
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def best_crossfade(frame: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """The cross-fade (1 - w) a + w b closest to ``frame`` (least squares w in [0, 1]) and w."""
    fa, fb, f = (x.astype(np.float64).ravel() for x in (a, b, frame))
    d = fb - fa
    w = float(np.clip(np.dot(f - fa, d) / max(np.dot(d, d), 1e-9), 0.0, 1.0))
    mix = np.clip(np.rint((1 - w) * a.astype(np.float64) + w * b.astype(np.float64)), 0, 255).astype(np.uint8)
    return w, mix


def turn_angles(positions: np.ndarray, min_step: float = 0.5) -> np.ndarray:
    """Direction change (degrees) between consecutive per-frame steps of (n, 2) ``positions``.

    Steps shorter than ``min_step`` px (the slow start and end) carry no reliable direction and
    are skipped.
    """
    steps = np.diff(np.asarray(positions, dtype=np.float64), axis=0)
    keep = np.hypot(steps[:, 0], steps[:, 1]) >= min_step
    ang = np.arctan2(steps[keep, 1], steps[keep, 0])
    turn = np.abs((np.diff(ang) + np.pi) % (2 * np.pi) - np.pi)
    return np.degrees(turn)
