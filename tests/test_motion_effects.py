"""Weather effects measured on the frames the engine yields (flat grey input, still camera).

Snow: flakes of many sizes, the big ones faster and softer (depth). Rain: slanted streaks much
longer than wide, and a slight darkening. Fog thicker high in the frame (far) than low (near), and
drifting; clouds in the upper part. Intensity words change density and speed; a seed reproduces.
"""

from __future__ import annotations

from itertools import islice

import cv2
import numpy as np
import pytest

from kinema.engines import EngineInputs
from kinema.engines.motion import frames

GREY = 70
FLAT = np.full((720, 720, 3), GREY, np.uint8)


def clip(prompt: str, k: int, *, seed: int | None = None, image: np.ndarray = FLAT) -> list[np.ndarray]:
    inputs = EngineInputs(prompt=prompt, image=image, cfg_scale=1.0, seed=seed)
    return list(islice(frames(inputs), k))


def luma(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])


def blobs(frame: np.ndarray, threshold: float = 12.0) -> list[dict[str, float]]:
    """Bright components over the flat grey: area, centroid, peak and edge softness (area / peak-normalised mass)."""
    lift = luma(frame) - GREY
    mask = (lift > threshold).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for k in range(1, n):
        x, y, w, h, area = stats[k]
        if x == 0 or y == 0 or x + w >= frame.shape[1] or y + h >= frame.shape[0]:
            continue
        region = lift[y : y + h, x : x + w][labels[y : y + h, x : x + w] == k]
        out.append(
            {
                "area": float(area),
                "cx": float(centroids[k][0]),
                "cy": float(centroids[k][1]),
                "peak": float(region.max()),
                "w": float(w),
                "h": float(h),
                # share of the blob below half its peak: high for a soft (blurred) flake
                "soft": float((region < 0.5 * region.max()).mean()),
            }
        )
    return out


def steps(a: np.ndarray, b: np.ndarray) -> list[tuple[float, float, float]]:
    """(area, dx, dy) of flakes matched from frame ``a`` to the next frame ``b`` (the one similar blob below)."""
    first, second = blobs(a), blobs(b)
    pos = np.array([(s["cx"], s["cy"], s["area"]) for s in second])
    found = []
    for f in first:
        dx, dy = pos[:, 0] - f["cx"], pos[:, 1] - f["cy"]
        ok = (np.abs(dx) < 12) & (dy > -0.5) & (dy < 14) & (np.abs(np.log(pos[:, 2] / f["area"])) < 0.5)
        if np.count_nonzero(ok) == 1:  # unambiguous matches only
            found.append((f["area"], float(dx[ok][0]), float(dy[ok][0])))
    return found


def fall_speeds(a: np.ndarray, b: np.ndarray) -> list[tuple[float, float]]:
    """(area, downward step) of matched flakes."""
    return [(area, dy) for area, _, dy in steps(a, b)]


def test_snow_has_depth_size_speed_and_blur_vary_together() -> None:
    shots = clip("heavy snow, static camera", 62)
    flakes = blobs(shots[60])
    areas = np.array([f["area"] for f in flakes])
    assert len(flakes) > 150
    assert np.percentile(areas, 90) > 4 * np.percentile(areas, 10)  # many sizes, not identical dots
    big, small = areas > np.percentile(areas, 80), areas < np.percentile(areas, 40)
    soft = np.array([f["soft"] for f in flakes])
    assert soft[big].mean() > soft[small].mean() + 0.1  # near (big) flakes are out of focus
    pairs = np.array(fall_speeds(shots[60], shots[61]))
    assert len(pairs) > 40
    rho = np.corrcoef(np.argsort(np.argsort(pairs[:, 0])), np.argsort(np.argsort(pairs[:, 1])))[0, 1]
    assert rho > 0.5, rho  # bigger flakes fall faster (rank correlation)


def test_rain_is_slanted_streaks_and_darkens_slightly() -> None:
    shots = clip("rain, static camera", 61)
    frame = shots[60]
    streaks = [s for s in blobs(frame, threshold=8.0) if s["area"] >= 8]
    assert len(streaks) > 80
    elongation = np.median([s["h"] / s["w"] for s in streaks])
    assert elongation > 4, elongation  # streaks, not drops
    # Orientation from the second moments of the streak mask: a few degrees off vertical, leaning right.
    lift = (luma(frame) - luma(shots[0]) > 8).astype(np.uint8)
    angles = []
    n, labels, stats, _ = cv2.connectedComponentsWithStats(lift, connectivity=8)
    for k in range(1, n):
        if stats[k][4] < 20:
            continue
        ys, xs = np.nonzero(labels == k)
        cov = np.cov(np.stack([xs, ys]))
        _, vecs = np.linalg.eigh(cov)
        vx, vy = vecs[:, 1]
        angles.append(np.degrees(np.arctan2(vx * np.sign(vy), abs(vy))))
    tilt = float(np.median(angles))
    assert 3 < tilt < 16, tilt
    # Slight darkening of the scene between the streaks: 3 to 15 % of the grey.
    between = luma(frame)[lift == 0]
    drop = GREY - float(np.median(between))
    assert 0.03 * GREY < drop < 0.15 * GREY, drop


def test_fog_is_thicker_far_away_and_drifts() -> None:
    shots = clip("fog, static camera", 91)
    lift = luma(shots[60]) - GREY
    h = lift.shape[0]
    top, bottom = lift[: h // 4].mean(), lift[3 * h // 4 :].mean()
    assert top > 1.6 * bottom > 0, (top, bottom)
    # Drift: the fog pattern of frame 90 is the one of frame 60 moved sideways.
    a = (luma(shots[60]) - GREY)[: h // 2]
    b = (luma(shots[90]) - GREY)[: h // 2]
    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64))
    assert abs(dx) > 2 and abs(dy) < 1, (dx, dy)


def test_clouds_fill_the_upper_part_and_drift() -> None:
    shots = clip("clouds drift by, static camera", 91)
    lift = luma(shots[60]) - GREY
    h = lift.shape[0]
    assert lift[: h // 3].mean() > 4 * max(lift[2 * h // 3 :].mean(), 0.1)
    a, b = lift[: h // 3], (luma(shots[90]) - GREY)[: h // 3]
    (dx, _), _ = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64))
    assert abs(dx) > 2, dx


def test_snow_moves_with_the_camera_near_flakes_more() -> None:
    """Parallax: when the camera tracks left (the picture slides right), flakes are carried right too,
    big (near) ones further than small (far) ones."""

    def sideways(prompt: str) -> tuple[float, float]:
        shots = clip(prompt, 77)
        found = np.array(steps(shots[75], shots[76]))
        big, small = found[:, 0] > np.percentile(found[:, 0], 75), found[:, 0] < np.percentile(found[:, 0], 35)
        return float(np.median(found[big, 1])), float(np.median(found[small, 1]))

    still_big, still_small = sideways("heavy snow, static camera")
    moving_big, moving_small = sideways("heavy snow, the camera moves left along the shore")
    assert moving_small - still_small > 0.3, (still_small, moving_small)  # carried with the picture
    assert (moving_big - still_big) > 1.5 * (moving_small - still_small), (still_big, moving_big)  # near more


@pytest.mark.parametrize(("light", "heavy"), [("light snow", "heavy snow"), ("light rain", "heavy rain")])
def test_intensity_words_change_density_and_speed(light: str, heavy: str) -> None:
    def measure(prompt: str) -> tuple[float, float]:
        shots = clip(f"{prompt}, static camera", 62)
        covered = float((luma(shots[60]) - luma(shots[0]) > 10).mean())
        if "snow" in prompt:
            speed = float(np.median([d for _, d in fall_speeds(shots[60], shots[61])]))
        else:  # rain: streak length is the travel during the exposure
            speed = float(np.median([s["h"] for s in blobs(shots[60], threshold=8.0) if s["area"] >= 8]))
        return covered, speed

    light_cover, light_speed = measure(light)
    heavy_cover, heavy_speed = measure(heavy)
    assert heavy_cover > 1.8 * light_cover, (light_cover, heavy_cover)
    assert heavy_speed > 1.2 * light_speed, (light_speed, heavy_speed)


def test_thick_fog_is_denser_than_light_fog() -> None:
    light = (luma(clip("light fog, static camera", 61)[60]) - GREY).mean()
    thick = (luma(clip("thick fog, static camera", 61)[60]) - GREY).mean()
    assert thick > 1.3 * light > 0, (light, thick)


def test_effects_are_deterministic_for_a_seed() -> None:
    a = clip("snow, rain and fog, static camera", 41, seed=3)[40]
    b = clip("snow, rain and fog, static camera", 41, seed=3)[40]
    c = clip("snow, rain and fog, static camera", 41, seed=4)[40]
    assert np.array_equal(a, b)
    assert float(np.abs(a.astype(np.int16) - c).mean()) > 0.5
