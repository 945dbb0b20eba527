"""Motion engine, brush mode: measured on raw frames and on the decoded MP4."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from motion_checks import (
    documented_resize,
    expected_offsets,
    input_to_output_points,
    luma_jitter,
    polyline_length,
    psnr,
    static_change,
    track_offsets,
    turn_angles,
)
from motion_scenes import zigzag_path
from skimage import data

from kinema.engines import DynamicBrush, EngineInputs
from kinema.engines.motion import frames, render
from kinema.media.encode import read_frames

# The astronaut photograph (512 x 512) renders at 720 x 720.
OUT = (720, 720)
# The face moves along a curved 5-point path (input pixels, origin bottom-left, y up).
FACE_PATH = ((225, 402), (300, 430), (380, 400), (400, 320), (330, 280))
PATCH_PATH = ((170, 127), (240, 110))


def ellipse(shape: tuple[int, int], center: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, center, axes, 0, 0, 360, 1, -1)
    return m.astype(bool)


def brush_case() -> tuple[EngineInputs, np.ndarray, np.ndarray]:
    img = data.astronaut()
    face = ellipse(img.shape[:2], (225, 110), (60, 75))
    patch = ellipse(img.shape[:2], (170, 385), (40, 40))
    static = np.zeros(img.shape[:2], bool)
    static[:, :90] = True  # the flag
    inputs = EngineInputs(
        prompt="the astronaut looks around",
        image=img,
        static_mask=static,
        dynamic_brushes=(DynamicBrush(face, FACE_PATH), DynamicBrush(patch, PATCH_PATH)),
    )
    return inputs, face, static


def out_mask(mask: np.ndarray) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), OUT, interpolation=cv2.INTER_NEAREST) > 0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    inputs, face, static = brush_case()
    raw = list(frames(inputs))
    path = tmp_path_factory.mktemp("brush") / "brush.mp4"
    logs: list[str] = []
    info = render(inputs, path, callback=lambda p: None, should_cancel=lambda: False, log=logs.append)
    return {
        "inputs": inputs,
        "raw": raw,
        "decoded": read_frames(path),
        "info": info,
        "logs": logs,
        "face": out_mask(face),
        "static": out_mask(static),
    }


def test_output_format(clip: dict) -> None:
    info = clip["info"]
    assert (info.width, info.height, info.fps, info.frames) == (720, 720, 30, 150)
    assert len(clip["raw"]) == 150 and clip["decoded"].shape == (150, 720, 720, 3)
    assert any("brush" in line for line in clip["logs"])


def test_first_frame_is_the_image(clip: dict) -> None:
    expected = documented_resize(clip["inputs"].image, OUT)
    assert np.array_equal(clip["raw"][0], expected)
    assert psnr(clip["decoded"][0], expected) >= 36.0


def test_static_region_does_not_change(clip: dict) -> None:
    expected = documented_resize(clip["inputs"].image, OUT)
    static = clip["static"]
    for frame in clip["raw"]:
        assert np.array_equal(frame[static], expected[static])
    assert static_change(clip["decoded"], static) <= 0.05


def path_errors(got: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance (px) from each given point to the tracked path (the polyline through the per-frame positions)."""
    pos = got + pts[0]
    a, b = pos[:-1], pos[1:]
    out = []
    for p in pts:
        ab = b - a
        t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
        out.append(float(np.min(np.linalg.norm(a + t[:, None] * ab - p, axis=1))))
    return np.array(out)


def arc_fraction(got: np.ndarray) -> np.ndarray:
    """Fraction of the tracked path's length covered at every frame."""
    steps = np.linalg.norm(np.diff(got, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)]) / steps.sum()


def test_region_passes_through_every_point_with_the_documented_timing(clip: dict) -> None:
    pts = input_to_output_points(FACE_PATH, (512, 512), OUT)
    assert len(pts) >= 4 and polyline_length(np.asarray(FACE_PATH, float)) >= 300
    law = expected_offsets(np.array([[0.0, 0.0], [1.0, 0.0]]), 150)[:, 0]  # ease(u) as a path fraction
    for name in ("raw", "decoded"):
        got, alive = track_offsets(clip[name], clip["face"])
        assert alive >= 10
        miss = path_errors(got, pts)
        assert float(miss.max()) <= 1.5, (name, miss)
        assert np.linalg.norm(got[-1] - (pts[-1] - pts[0])) <= 1.0, (name, got[-1])
        # Constant speed along the path between the ramps: the covered fraction follows ease(u).
        assert float(np.abs(arc_fraction(got) - law).max()) <= 0.02, name
    assert np.linalg.norm(pts[-1] - pts[0]) > 100


def test_a_region_that_did_not_move_fails_the_path_bars(clip: dict) -> None:
    """The measurement can fail: a clip that holds frame 0 misses the points by far."""
    frozen = [clip["raw"][0]] * 150
    got, _ = track_offsets(frozen, clip["face"])
    pts = input_to_output_points(FACE_PATH, (512, 512), OUT)
    assert path_errors(got, pts).max() > 50


def test_zigzag_turns_smoothly_through_every_corner(tmp_path: Path) -> None:
    """A 5-point zig-zag (77 degree corners): the decoded motion turns at most 15 degrees per frame."""
    inputs = zigzag_path()
    brush = inputs.dynamic_brushes[0]
    mask = out_mask(brush.mask)
    render(inputs, tmp_path / "zig.mp4", callback=lambda p: None, should_cancel=lambda: False, log=lambda m: None)
    decoded = read_frames(tmp_path / "zig.mp4")
    got, alive = track_offsets(decoded, mask)
    assert alive >= 10
    pts = input_to_output_points(brush.trajectory, (512, 512), OUT)
    assert path_errors(got, pts).max() <= 1.5
    turns = turn_angles(got)
    print(f"zig-zag: max turn {turns.max():.1f} deg per frame")
    assert turns.max() <= 15.0
    # The bar can fail: straight segments between the points turn by most of the corner within one or two frames.
    assert turn_angles(expected_offsets(pts, 150)).max() >= 35.0


def test_no_luma_jitter(clip: dict) -> None:
    assert luma_jitter(clip["raw"]) < 0.1
    assert luma_jitter(clip["decoded"]) < 0.1
    # A ±2 % brightness wobble would fail the same bar.
    wobble = [
        np.clip(f.astype(np.float32) * (1.02 if i % 2 else 0.98), 0, 255).astype(np.uint8)
        for i, f in enumerate(clip["raw"][:30])
    ]
    assert luma_jitter(wobble) >= 0.1


def test_same_inputs_same_frames(clip: dict) -> None:
    again = frames(clip["inputs"])
    for i, frame in enumerate(again):
        if i in (1, 75, 149):
            assert np.array_equal(frame, clip["raw"][i])


def test_static_mask_alone_keeps_the_picture_still() -> None:
    img = data.coffee()  # 600 x 400 -> 1080 x 720
    static = np.zeros(img.shape[:2], bool)
    static[100:300, 200:400] = True
    inputs = EngineInputs(prompt="zoom in", image=img, static_mask=static)
    raw = list(frames(inputs))
    assert len(raw) == 150 and raw[0].shape == (720, 1080, 3)
    assert np.array_equal(raw[0], documented_resize(img, (1080, 720)))
    assert all(np.array_equal(f, raw[0]) for f in raw)


def test_effects_in_brush_mode_never_touch_the_static_region() -> None:
    inputs, _face, static = brush_case()
    inputs = EngineInputs(
        prompt="heavy snow falls",
        image=inputs.image,
        static_mask=inputs.static_mask,
        dynamic_brushes=inputs.dynamic_brushes,
        cfg_scale=1.0,
    )
    static_out = out_mask(static)
    first = None
    changed = 0
    for i, frame in enumerate(frames(inputs)):
        if i == 0:
            first = frame
        assert np.array_equal(frame[static_out], first[static_out])
        if i == 60:
            changed = int((np.abs(frame.astype(int) - first.astype(int)).max(axis=2) > 40)[~static_out].sum())
        if i > 60:
            break
    assert changed > 500  # the snow is there, outside the static region


def test_stress_six_masks_77_points_leaving_the_frame_other_resolution(tmp_path: Path) -> None:
    img = data.chelsea()  # 451 x 300 -> 1082 x 720
    mh, mw = 600, 902  # masks at twice the image resolution (same aspect)
    rng = np.random.default_rng(7)
    brushes = []
    for k in range(6):
        cx, cy = 120 + 130 * k, 200 + 40 * (k % 3)
        mask = ellipse((mh, mw), (cx, cy), (70, 50))
        t = np.linspace(0, 1, 77)
        # Spirals and lines in input pixels, several running far outside the picture.
        xs = cx / 2 + 300 * t * np.cos(6 * t + k) + (k - 3) * 150 * t
        ys = (mh - cy) / 2 + 250 * t * np.sin(6 * t + k) + rng.normal(0, 3, 77)
        brushes.append(DynamicBrush(mask, tuple((int(x), int(y)) for x, y in zip(xs, ys, strict=True))))
    static = np.zeros((mh, mw), bool)
    static[500:, 700:] = True
    inputs = EngineInputs(
        prompt="the cat stretches", image=img, duration_s=10, static_mask=static, dynamic_brushes=tuple(brushes)
    )
    progress: list[int] = []
    info = render(
        inputs,
        tmp_path / "stress.mp4",
        callback=lambda p: progress.append(p.step),
        should_cancel=lambda: False,
        log=lambda m: None,
    )
    assert (info.width, info.height, info.frames) == (1082, 720, 300)
    assert progress == list(range(1, 301))
    decoded = read_frames(tmp_path / "stress.mp4")
    assert decoded.shape == (300, 720, 1082, 3)
    assert psnr(decoded[0], documented_resize(img, (1082, 720))) >= 36.0
    assert static_change(decoded, out_mask_at(static, (1082, 720))) <= 0.05


def out_mask_at(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
