"""Motion engine, prompt mode: camera moves and effects measured on the frames they produce."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest
from motion_checks import documented_resize, psnr, static_change, view_change
from skimage import data

from kinema.engines import EngineInputs
from kinema.engines.motion import frames, render
from kinema.media.encode import read_frames

IMG = data.astronaut()  # 512 x 512 -> 720 x 720
OUT = (720, 720)
DEFAULT_NEGATIVE = "blur, distort, and low quality"


def inputs(prompt: str, **kw: object) -> EngineInputs:
    kw.setdefault("negative_prompt", DEFAULT_NEGATIVE)
    return EngineInputs(prompt=prompt, image=IMG, **kw)  # type: ignore[arg-type]


def first_last(inp: EngineInputs) -> tuple[np.ndarray, np.ndarray]:
    first = last = None
    for i, frame in enumerate(frames(inp)):
        if i == 0:
            first = frame
        last = frame
    assert first is not None and last is not None
    return first, last


def head(inp: EngineInputs, k: int) -> list[np.ndarray]:
    return list(islice(frames(inp), k))


def mean_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize(
    ("prompt", "expect"),
    [
        ("the camera zooms in on her face", lambda s, a, dx, dy: s > 1.08),
        ("the camera slowly zooms in on her face", lambda s, a, dx, dy: 1.03 < s < 1.09),
        ("dolly in towards the astronaut", lambda s, a, dx, dy: s > 1.1),
        # Never wider than the first frame: a pull-out from the full picture would have to invent margins.
        ("the camera pulls back to reveal the room", lambda s, a, dx, dy: abs(s - 1) < 0.005),
        ("camera pans left", lambda s, a, dx, dy: dx > 20 and abs(dy) < 5),
        ("camera pans right", lambda s, a, dx, dy: dx < -20 and abs(dy) < 5),
        ("the camera tilts up", lambda s, a, dx, dy: dy > 20 and abs(dx) < 5),
        ("tilt down to the helmet", lambda s, a, dx, dy: dy < -20 and abs(dx) < 5),
        ("the picture rotates counterclockwise", lambda s, a, dx, dy: a > 1.5),
        ("the camera rotates clockwise", lambda s, a, dx, dy: a < -1.5),
    ],
)
def test_camera_words_move_the_view(prompt: str, expect) -> None:
    first, last = first_last(inputs(prompt))
    assert np.array_equal(first, documented_resize(IMG, OUT))
    scale, angle, dx, dy = view_change(first, last)
    assert expect(scale, angle, dx, dy), (prompt, scale, angle, dx, dy)


def test_no_camera_word_gives_a_gentle_push_in() -> None:
    _, gentle = first_last(inputs("a portrait of an astronaut"))
    _, explicit = first_last(inputs("zoom in on a portrait of an astronaut"))
    first = documented_resize(IMG, OUT)
    s_gentle = view_change(first, gentle)[0]
    s_explicit = view_change(first, explicit)[0]
    assert 1.01 < s_gentle < s_explicit


def test_motion_is_eased() -> None:
    """The view moves little between the first frames, most in the middle (measured zoom)."""
    clip = list(frames(inputs("zoom in", cfg_scale=1.0)))
    scales = [view_change(clip[0], clip[i])[0] for i in (5, 75, 80, 144, 149)]
    early, mid_step, late = scales[0] - 1, scales[2] - scales[1], scales[4] - scales[3]
    assert early < 0.01 and late < 0.01 and mid_step > 0.005
    assert scales[4] > 1.2


def test_cfg_scale_scales_the_move() -> None:
    first = documented_resize(IMG, OUT)
    half = view_change(first, first_last(inputs("zoom in", cfg_scale=0.5))[1])[0]
    full = view_change(first, first_last(inputs("zoom in", cfg_scale=1.0))[1])[0]
    assert 1.05 < half < full


def test_cfg_scale_zero_gives_a_still_video(tmp_path: Path) -> None:
    inp = inputs("snow falls as the camera zooms in", cfg_scale=0.0)
    raw = list(frames(inp))
    assert all(np.array_equal(f, raw[0]) for f in raw)
    render(inp, tmp_path / "still.mp4", callback=lambda p: None, should_cancel=lambda: False, log=lambda m: None)
    decoded = read_frames(tmp_path / "still.mp4")
    assert len(decoded) == 150
    assert psnr(decoded[0], raw[0]) >= 36.0
    assert static_change(decoded, np.ones(decoded.shape[1:3], bool)) <= 0.05


def test_still_camera_words_hold_the_view() -> None:
    raw = list(frames(inputs("static camera, the astronaut smiles")))
    assert all(np.array_equal(f, raw[0]) for f in raw)


def test_negative_prompt_suppresses_what_it_names() -> None:
    snow_suppressed = head(inputs("snow falls, static camera", negative_prompt="snow"), 61)
    assert all(np.array_equal(f, snow_suppressed[0]) for f in snow_suppressed)
    zoom_suppressed = list(frames(inputs("zoom in", negative_prompt="zoom in, blur")))
    assert all(np.array_equal(f, zoom_suppressed[0]) for f in zoom_suppressed)
    no_camera = list(frames(inputs("pan left", negative_prompt="camera movement")))
    assert all(np.array_equal(f, no_camera[0]) for f in no_camera)


def test_default_negative_prompt_suppresses_nothing() -> None:
    with_default = head(inputs("snow falls, zoom in"), 61)[60]
    with_none = head(inputs("snow falls, zoom in", negative_prompt=""), 61)[60]
    assert np.array_equal(with_default, with_none)
    assert mean_change(with_default, documented_resize(IMG, OUT)) > 1.0


@pytest.mark.parametrize("word", ["heavy snow", "rain", "drifting fog", "clouds drift by"])
def test_effects_fade_in_from_an_exact_first_frame(word: str) -> None:
    clip = head(inputs(f"{word}, static camera", cfg_scale=1.0), 61)
    base = documented_resize(IMG, OUT)
    assert np.array_equal(clip[0], base)
    changes = [mean_change(f, base) for f in clip]
    assert changes[1] < 0.05  # barely visible one frame in
    assert changes[10] < changes[20] < changes[30]  # fading in
    # Clearly there after two seconds: a share of the pixels changed by more than 8 levels.
    touched = float((np.abs(clip[60].astype(np.int16) - base).max(axis=2) > 8).mean())
    assert touched > 0.005, touched


def test_seed_varies_effects_and_reproduces() -> None:
    def frame60(seed: int | None) -> np.ndarray:
        return head(inputs("snow and rain, static camera", seed=seed), 61)[60]

    a, b = frame60(1), frame60(2)
    assert mean_change(a, b) > 0.5
    assert np.array_equal(frame60(1), a)
    assert np.array_equal(frame60(None), frame60(None))


def test_log_says_what_was_understood(tmp_path: Path) -> None:
    lines: list[str] = []
    inp = inputs("Snowflakes fall as a car moves forward along the road.", cfg_scale=1.0)
    render(inp, tmp_path / "p.mp4", callback=lambda p: None, should_cancel=lambda: False, log=lines.append)
    text = "\n".join(lines)
    # The car's own motion cannot be drawn: said plainly, with what to use instead; the push-in is the default.
    assert 'not animated: "a car moves forward along the road"' in text and "motion brush" in text
    assert "push-in (default" in text
    assert 'snow (from "snowflakes")' in text
    decoded = read_frames(tmp_path / "p.mp4")
    assert psnr(decoded[0], documented_resize(IMG, OUT)) >= 38.0


@pytest.mark.parametrize(
    "prompt",
    [
        "pan left",
        "the camera pulls back",
        "orbit left around her",
        "rotate clockwise",
        "handheld camera shake",
        "tilt up then pan right",
        "the camera rolls counterclockwise and pans right",
    ],
)
def test_the_view_never_leaves_the_picture(prompt: str) -> None:
    """No margins: every corner of the last frame shows a point inside the first frame (homography fit)."""
    first, last = first_last(inputs(prompt, cfg_scale=1.0))
    orb = cv2.ORB_create(3000)
    kl, dl = orb.detectAndCompute(cv2.cvtColor(last, cv2.COLOR_RGB2GRAY), None)
    kf, df = orb.detectAndCompute(cv2.cvtColor(first, cv2.COLOR_RGB2GRAY), None)
    found = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(dl, df)
    src = np.float32([kl[m.queryIdx].pt for m in found])
    dst = np.float32([kf[m.trainIdx].pt for m in found])
    hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 2.0)
    assert hom is not None and inliers.sum() > 50
    h, w = last.shape[:2]
    corners = cv2.perspectiveTransform(np.float32([[[0, 0]], [[w - 1, 0]], [[0, h - 1]], [[w - 1, h - 1]]]), hom)
    assert corners[..., 0].min() > -2 and corners[..., 0].max() < w + 1, corners.reshape(-1, 2)
    assert corners[..., 1].min() > -2 and corners[..., 1].max() < h + 1, corners.reshape(-1, 2)
