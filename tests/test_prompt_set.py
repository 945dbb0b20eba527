"""The labelled prompt set: per-family precision and recall, and camera moves measured in the decoded video.

The set (``tests/data/prompts.tsv``) holds prompts written the way users write them, each labelled
with the camera families, effects and flags it should produce. The camera checks render prompts of
every family, encode and decode the clip, and fit similarity transforms (or homographies, for the
perspective of an orbit) between decoded frames (ORB matches, RANSAC): the measured move must go
the way the prompt asked.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from kinema.engines import EngineInputs
from kinema.engines.motion import frames
from kinema.media.encode import VideoWriter, read_frames

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("prompt_set", ROOT / "benchmarks" / "prompt_set.py")
assert _spec is not None and _spec.loader is not None
prompt_set = importlib.util.module_from_spec(_spec)
sys.modules["prompt_set"] = prompt_set
_spec.loader.exec_module(prompt_set)

ISSUE_PHRASES = {
    "drone shot flying forward": {"drone-forward"},
    "handheld camera shake": {"shake"},
    "the camera moves left along the shore": {"track-left"},
    "slow zoom into the pagoda roof": {"push-in", "low"},
    "the camera circles the temple to the left": {"orbit-left"},
    "crane shot rising up": {"crane-up"},
    "tracking shot following the boat": {"track-right"},
    "the camera doesn't move": {"still"},
    "pans from right to left": {"pan-left"},
    "zoom in slowly then pull back": {"push-in", "pull-out", "sequence", "low"},
    "snow-capped mountains, sunny day": {"default"},
    "rainforest": {"default"},
    "smoke rises from the chimney": {"default", "unsupported"},
    "a person waving": {"default", "unsupported"},
    "a flower blooming": {"default", "unsupported"},
}


def test_the_set_is_large_and_covers_every_family() -> None:
    rows = prompt_set.load()
    assert len(rows) >= 150
    assert len({(r.prompt.lower(), r.negative) for r in rows}) == len(rows)  # no duplicates
    support = {s.label: s.support for s in prompt_set.score(rows)}
    from kinema.engines.motion.vocabulary import CAMERA_FAMILIES, EFFECT_NAMES

    for label in (*CAMERA_FAMILIES, *EFFECT_NAMES, "still", "default", "unsupported", "sequence", "low", "high"):
        assert support.get(label, 0) >= 3, label


def test_issue_phrases_are_in_the_set_with_the_right_labels() -> None:
    rows = {r.prompt: r for r in prompt_set.load()}
    for prompt, labels in ISSUE_PHRASES.items():
        assert rows[prompt].expected == labels, prompt
        assert prompt_set.predict(rows[prompt]) == labels, prompt


def test_precision_and_recall_per_family_at_least_0_9() -> None:
    scores = prompt_set.score(prompt_set.load())
    low = [(s.label, round(s.precision, 3), round(s.recall, 3)) for s in scores if s.precision < 0.9 or s.recall < 0.9]
    assert not low, low


# --- camera moves measured in the decoded video -------------------------------------------------

SIZE = (480, 320)
IMAGE = data.chelsea()  # 451 x 300, fur texture everywhere


def gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def matches(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    orb = cv2.ORB_create(3000, fastThreshold=10)
    ka, da = orb.detectAndCompute(gray(a), None)
    kb, db = orb.detectAndCompute(gray(b), None)
    found = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    return (np.float32([ka[m.queryIdx].pt for m in found]), np.float32([kb[m.trainIdx].pt for m in found]))


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float, np.ndarray, np.ndarray]:
    """(scale, on-screen ccw angle in degrees, dx, dy of the centre) mapping ``a``'s content to ``b``; inliers."""
    src, dst = matches(a, b)
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    assert m is not None and inliers.sum() >= 25, "could not relate the two frames"
    keep = inliers.ravel() == 1
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    angle = float(np.degrees(np.arctan2(-m[1, 0], m[0, 0])))
    h, w = a.shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    moved = m[:, :2] @ c + m[:, 2]
    return scale, angle, float(moved[0] - c[0]), float(moved[1] - c[1]), src[keep], dst[keep]


def edge_heights(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Fit a homography from ``a`` to ``b`` (MAGSAC); the mapped heights of the left and right sides of ``a``'s
    inner box (20 % in from each edge, where the fit has features on all sides), and how far those mapped
    sides lean from vertical (px)."""
    src, dst = matches(a, b)
    hom, inliers = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 1.5)
    assert hom is not None and inliers.sum() >= 25
    h, w = a.shape[:2]
    x0, x1, y0, y1 = 0.2 * w, 0.8 * w, 0.2 * h, 0.8 * h
    pts = np.float32([[[x0, y0]], [[x0, y1]], [[x1, y0]], [[x1, y1]]])
    (lt, lb, rt, rb) = cv2.perspectiveTransform(pts, hom).reshape(4, 2)
    lean = max(abs(lt[0] - lb[0]), abs(rt[0] - rb[0]))
    return float(lb[1] - lt[1]), float(rb[1] - rt[1]), float(lean)


def decoded_clip(prompt: str, tmp_path: Path, *, seed: int | None = None) -> tuple[np.ndarray, list[str]]:
    logs: list[str] = []
    inputs = EngineInputs(prompt=prompt, image=IMAGE, negative_prompt="blur, distort, and low quality", seed=seed)
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, *SIZE, 30) as writer:
        for frame in frames(inputs, SIZE, log=logs.append):
            writer.write(frame)
    return read_frames(path), logs


Check = Callable[[np.ndarray, list[str]], None]


def _zoom(lo: float, hi: float) -> Check:
    def check(clip: np.ndarray, logs: list[str]) -> None:
        s, _, _, _, _, _ = similarity(clip[0], clip[-1])
        assert lo < s < hi, s

    return check


def _translation(axis: int, sign: int, min_px: float) -> Check:
    """Content moves along ``axis`` (0: x, 1: y) by ``sign`` * at least ``min_px``; mid-clip it is pure translation."""

    def check(clip: np.ndarray, logs: list[str]) -> None:
        _, _, dx, dy, _, _ = similarity(clip[0], clip[-1])
        along, across = (dx, dy) if axis == 0 else (dy, dx)
        assert sign * along > min_px and abs(across) < 0.25 * abs(along), (dx, dy)
        # In the middle of the clip the move is translation: the zoom the view needs was made early.
        s2, _, dx2, dy2, _, _ = similarity(clip[75], clip[120])
        along2 = dx2 if axis == 0 else dy2
        zoom_px = abs(s2 - 1) * max(SIZE) / 2  # how far the zoom moves the frame's edge
        assert sign * along2 > 3.0 and abs(along2) > 8 * zoom_px, (along2, s2)

    return check


def _orbit(sign: int) -> Check:
    """The side the camera circles towards grows, the other shrinks; verticals stay vertical."""

    def check(clip: np.ndarray, logs: list[str]) -> None:
        left, right, lean = edge_heights(clip[0], clip[-1])
        ratio = right / left
        assert ratio > 1.04 if sign > 0 else ratio < 1 / 1.04, ratio
        assert lean < 1.0, lean

    return check


def _flat(clip: np.ndarray, logs: list[str]) -> None:
    """A track slides the camera: no perspective change (unlike a pan or an orbit)."""
    left, right, lean = edge_heights(clip[0], clip[-1])
    assert abs(right / left - 1) < 0.008 and lean < 1.0, (left, right, lean)


def _both(*checks: Check) -> Check:
    def check(clip: np.ndarray, logs: list[str]) -> None:
        for c in checks:
            c(clip, logs)

    return check


def _roll(sign: int) -> Check:
    def check(clip: np.ndarray, logs: list[str]) -> None:
        _, angle, dx, dy, _, _ = similarity(clip[0], clip[-1])
        assert sign * angle > 1.0 and abs(dx) < 3 and abs(dy) < 3, (angle, dx, dy)

    return check


def _drone(clip: np.ndarray, logs: list[str]) -> None:
    s, _, _, dy, _, _ = similarity(clip[0], clip[-1])
    assert s > 1.12 and dy > 5, (s, dy)  # zooms about a point high in the frame: content streams down


def _pull_out(clip: np.ndarray, logs: list[str]) -> None:
    s, _, dx, dy, _, _ = similarity(clip[0], clip[-1])
    assert abs(s - 1) < 0.01 and abs(dx) < 1 and abs(dy) < 1, (s, dx, dy)  # never wider than frame 0
    assert any("zooming out" in line and "reduced" in line for line in logs), logs


def _in_then_out(clip: np.ndarray, logs: list[str]) -> None:
    mid = similarity(clip[0], clip[74])[0]
    end = similarity(clip[0], clip[-1])[0]
    assert mid > 1.04 and abs(end - 1) < 0.01, (mid, end)


def _still(clip: np.ndarray, logs: list[str]) -> None:
    change = max(float(np.abs(f.astype(np.int16) - clip[0]).mean()) for f in clip[1:])
    assert change < 0.5, change


CAMERA_CASES: list[tuple[str, Check]] = [
    ("the camera pushes in", _zoom(1.10, 1.30)),
    ("slow zoom into the pagoda roof", _zoom(1.03, 1.10)),
    ("the camera pulls back to reveal the room", _pull_out),
    ("zoom in slowly then pull back", _in_then_out),
    ("drone shot flying forward", _drone),
    ("pan right across the beach", _translation(0, -1, 12)),
    ("pans from right to left", _translation(0, +1, 12)),
    ("the camera tilts up to the sky", _translation(1, +1, 8)),
    ("tilt down to the river", _translation(1, -1, 8)),
    ("crane shot rising up", _translation(1, +1, 8)),
    ("the camera descends toward the lake", _translation(1, -1, 8)),
    ("the camera moves left along the shore", _both(_translation(0, +1, 12), _flat)),
    ("tracking shot following the boat", _both(_translation(0, -1, 12), _flat)),
    ("the camera circles the temple to the left", _orbit(-1)),
    ("the camera orbits the statue to the right", _orbit(+1)),
    ("the camera rotates clockwise", _roll(-1)),
    ("the picture rotates counterclockwise", _roll(+1)),
    ("the camera doesn't move", _still),
]


@pytest.mark.parametrize(("prompt", "check"), CAMERA_CASES, ids=[c[0] for c in CAMERA_CASES])
def test_camera_move_measured_in_the_decoded_video(prompt: str, check: Check, tmp_path: Path) -> None:
    clip, logs = decoded_clip(prompt, tmp_path)
    assert len(clip) == 150
    check(clip, logs)


def test_handheld_shake_is_smooth_seeded_jitter(tmp_path: Path) -> None:
    for sub in "abc":
        (tmp_path / sub).mkdir()
    clip, _ = decoded_clip("handheld camera shake", tmp_path / "a", seed=7)
    # Where frame 0's centre is in every frame: a path that wanders back and forth around the start.
    path = np.array([similarity(clip[0], clip[i])[2:4] for i in range(150)])
    assert np.abs(path[:3]).max() < 0.3  # faded in from an exact frame 0
    spread = path[30:].std(axis=0)
    assert spread.min() > 0.4 and np.abs(path).max() < 25, (spread, np.abs(path).max())
    for axis in (0, 1):
        crossings = np.count_nonzero(np.diff(np.sign(path[30:, axis] - path[30:, axis].mean())))
        assert crossings >= 3, (axis, crossings)  # jitter, not a drift
    # Smooth: what a 2-frame Gaussian removes (per-frame noise, and the fits' own error) is small.
    smooth = np.stack([np.convolve(np.pad(path[:, k], 6, mode="edge"), _gauss(2.0), "valid") for k in (0, 1)], 1)
    residual = (path - smooth)[30:-10].std(axis=0)
    assert (residual < 0.25 * spread).all(), (residual, spread)
    again, _ = decoded_clip("handheld camera shake", tmp_path / "b", seed=7)
    other, _ = decoded_clip("handheld camera shake", tmp_path / "c", seed=8)
    assert np.array_equal(again, clip)
    assert float(np.abs(other[100].astype(np.int16) - clip[100]).mean()) > 1.0


def _gauss(sigma: float) -> np.ndarray:
    x = np.arange(-6, 7)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()
