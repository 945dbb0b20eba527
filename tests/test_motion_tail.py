"""Motion engine, tail mode: flow interpolation between the image and the tail image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from motion_checks import (
    best_crossfade,
    documented_resize,
    gradient_energy,
    luma_jitter,
    psnr,
    sharpness,
)
from motion_scenes import camera_pair, mid_similarity, moving_object_pair, unrelated_pair, view_at
from skimage import data

from kinema.engines import EngineInputs
from kinema.engines.motion import frames, render
from kinema.media.encode import read_frames

OUT = (720, 720)
N = 150
MID = 74
# The tail is the astronaut seen by a camera that moved: zoom 1.08 about the centre, shifted.
ZOOM, SHIFT = 1.08, (22.0, -14.0)


def camera_affine(t: float, size: int) -> np.ndarray:
    """Affine map from frame-0 pixels to their place at time t: linear blend of identity and the full move."""
    c = (size - 1) / 2.0
    full = np.array([[ZOOM, 0.0, c - ZOOM * c + SHIFT[0]], [0.0, ZOOM, c - ZOOM * c + SHIFT[1]]])
    ident = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return (1 - t) * ident + t * full


def documented_ease(u: float, ramp: float = 0.25) -> float:
    """Trapezoidal speed profile: linear speed ramps over the first and last quarter."""
    peak = 1.0 / (1.0 - ramp)
    if u <= ramp:
        return 0.5 * peak * u * u / ramp
    if u >= 1 - ramp:
        return 1.0 - 0.5 * peak * (1 - u) ** 2 / ramp
    return 0.5 * peak * ramp + peak * (u - ramp)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    img = data.astronaut()
    tail = cv2.warpAffine(
        img, camera_affine(1.0, 512), (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
    )
    inputs = EngineInputs(prompt="the camera moves closer", image=img, tail_image=tail)
    raw = list(frames(inputs))
    path = tmp_path_factory.mktemp("tail") / "tail.mp4"
    render(inputs, path, callback=lambda p: None, should_cancel=lambda: False, log=lambda m: None)
    first, last = documented_resize(img, OUT), documented_resize(tail, OUT)
    return {"raw": raw, "decoded": read_frames(path), "first": first, "last": last}


def test_first_and_last_frames_are_the_two_images(clip: dict) -> None:
    assert len(clip["raw"]) == N and clip["decoded"].shape == (N, 720, 720, 3)
    assert np.array_equal(clip["raw"][0], clip["first"])
    assert np.array_equal(clip["raw"][-1], clip["last"])
    assert psnr(clip["decoded"][0], clip["first"]) >= 36.0
    assert psnr(clip["decoded"][-1], clip["last"]) >= 36.0


def test_middle_frame_stays_sharp_where_a_cross_fade_does_not(clip: dict) -> None:
    input_sharpness = sharpness(clip["first"])
    t = documented_ease(MID / (N - 1))
    crossfade = cv2.addWeighted(clip["first"], 1 - t, clip["last"], t, 0.0)
    assert sharpness(crossfade) < 0.6 * input_sharpness  # the bar rejects a cross-fade
    assert sharpness(clip["raw"][MID]) >= 0.6 * input_sharpness
    assert sharpness(clip["decoded"][MID]) >= 0.6 * sharpness(clip["decoded"][0])


def true_move_matrix(t: float) -> np.ndarray:
    """The camera move at time t in output pixels (zoom about the centre, shift scaled to 720 px)."""
    scale = OUT[0] / 512
    zoom = (1 - t) + t * ZOOM
    c = (OUT[0] - 1) / 2.0
    return np.array(
        [[zoom, 0.0, c - zoom * c + t * SHIFT[0] * scale], [0.0, zoom, c - zoom * c + t * SHIFT[1] * scale]]
    )


def test_middle_frame_is_the_scene_half_way(clip: dict) -> None:
    """Against the true in-between view (the camera move at time t), flow beats a cross-fade."""
    t = documented_ease(MID / (N - 1))
    truth = cv2.warpAffine(
        clip["first"], true_move_matrix(t), OUT, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
    )
    crossfade = cv2.addWeighted(clip["first"], 1 - t, clip["last"], t, 0.0)
    inner = (slice(40, -40), slice(40, -40))  # away from the reflected borders
    assert psnr(clip["raw"][MID][inner], truth[inner]) >= psnr(crossfade[inner], truth[inner]) + 4.0


def test_no_luma_jitter(clip: dict) -> None:
    assert luma_jitter(clip["raw"]) < 0.1
    assert luma_jitter(clip["decoded"]) < 0.1
    # The measure sees a real flicker: ±2 % brightness on alternate frames fails it by far.
    flicker = [
        np.clip(f.astype(np.float32) * (1.02 if i % 2 else 0.98), 0, 255).astype(np.uint8)
        for i, f in enumerate(clip["decoded"])
    ]
    assert luma_jitter(flicker) > 1.0


def test_tail_equal_to_the_image_loops_seamlessly(tmp_path: Path) -> None:
    img = data.coffee()  # 600 x 400 -> 1080 x 720
    inputs = EngineInputs(prompt="", image=img, tail_image=img.copy())
    raw = list(frames(inputs))
    expected = documented_resize(img, (1080, 720))
    assert len(raw) == N
    assert np.array_equal(raw[0], expected) and np.array_equal(raw[-1], expected)
    assert max(float(np.abs(f.astype(int) - expected.astype(int)).mean()) for f in raw) < 0.5


def test_tail_at_another_resolution_ends_on_the_tail() -> None:
    img = data.rocket()  # 640 x 427 -> 1080 x 720
    tail = cv2.resize(np.ascontiguousarray(img[:, ::-1]), (1280, 854), interpolation=cv2.INTER_CUBIC)
    inputs = EngineInputs(prompt="", image=img, tail_image=tail)
    size = (1080, 720)
    last = None
    for last in frames(inputs):  # noqa: B007  (the loop keeps the last frame)
        pass
    assert last is not None and np.array_equal(last, documented_resize(tail, size))


# --- Ground truth: camera moves cut from one larger photo, and an unrelated pair -------------------

EDGE = 32  # width of the band along the frame edges that is also checked on its own


def edge_band(shape: tuple[int, ...]) -> np.ndarray:
    band = np.zeros(shape[:2], bool)
    band[:EDGE], band[-EDGE:], band[:, :EDGE], band[:, -EDGE:] = True, True, True, True
    return band


@pytest.fixture(scope="module", params=["pan", "zoom"])
def camera_clip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    pair = camera_pair(request.param)
    path = tmp_path_factory.mktemp("cam") / f"{request.param}.mp4"
    logs: list[str] = []
    render(pair.inputs, path, callback=lambda p: None, should_cancel=lambda: False, log=logs.append)
    return {"kind": request.param, "pair": pair, "decoded": read_frames(path), "logs": logs}


def test_camera_move_middle_frames_match_the_true_views(camera_clip: dict) -> None:
    """A pan of a quarter frame and a 20 % zoom: every checked frame >= 30 dB, edges included."""
    pair, decoded = camera_clip["pair"], camera_clip["decoded"]
    band = edge_band(decoded[0].shape)
    for i in (37, MID, 112):
        t = documented_ease(i / (N - 1))
        truth = view_at(pair.photo, mid_similarity(pair.first, pair.last, t), (1280, 720))
        whole, edges = psnr(decoded[i], truth), psnr(decoded[i][band], truth[band])
        print(f"{camera_clip['kind']} frame {i}: {whole:.1f} dB, edge band {edges:.1f} dB")
        assert whole >= 30.0 and edges >= 30.0, (i, whole, edges)
    # The bar can fail: a cross-fade of the two views is far from the true middle view.
    t = documented_ease(MID / (N - 1))
    truth = view_at(pair.photo, mid_similarity(pair.first, pair.last, t), (1280, 720))
    fade = cv2.addWeighted(decoded[0], 1 - t, decoded[-1], t, 0.0)
    assert psnr(fade, truth) < 30.0
    assert any("camera move" in line for line in camera_clip["logs"])


def test_an_object_moving_on_its_own_follows_its_path(tmp_path: Path) -> None:
    """Besides the pan, an object moves 67 px between the images: the residual flow carries it there.

    Found by template matching in the decoded video, it is where the linear path puts it at each
    time, whole (no double image of a cross-fade between its two places).
    """
    pair = moving_object_pair()
    render(
        pair.inputs, tmp_path / "object.mp4", callback=lambda p: None, should_cancel=lambda: False, log=lambda m: None
    )
    made = read_frames(tmp_path / "object.mp4")
    patch = cv2.cvtColor(pair.patch, cv2.COLOR_RGB2GRAY)
    for i in (37, MID, 112):
        t = documented_ease(i / (N - 1))
        expected = pair.start + t * pair.step
        found = cv2.matchTemplate(cv2.cvtColor(made[i], cv2.COLOR_RGB2GRAY), patch, cv2.TM_CCOEFF_NORMED)
        _, score, _, at = cv2.minMaxLoc(found)
        miss = float(np.hypot(*(np.asarray(at) - expected)))
        camera_only = float(np.hypot(*(t * pair.move)))  # how far off the pan alone would put it
        print(
            f"moving object, frame {i}: {miss:.2f} px from its path (the pan alone: {camera_only:.1f} px), "
            f"match {score:.3f}"
        )
        assert miss <= 2.0 and score >= 0.6, (i, miss, score)
        assert camera_only >= 10.0  # the bar can fail: without the residual it would be this far off


def test_unrelated_images_never_tear() -> None:
    """No frame has more gradient energy than 1.1x the closest cross-fade of the two images."""
    inputs = unrelated_pair()
    a, b = documented_resize(inputs.image, OUT), documented_resize(inputs.tail_image, OUT)
    worst = 0.0
    for frame in frames(inputs):
        _, mix = best_crossfade(frame, a, b)
        worst = max(worst, gradient_energy(frame) / gradient_energy(mix))
    print(f"unrelated pair: worst gradient-energy ratio {worst:.3f}")
    assert worst <= 1.1
    # The bar can fail: two misregistered copies (a torn, doubled picture) add edges.
    _, mix = best_crossfade(cv2.addWeighted(a, 0.5, b, 0.5, 0), a, b)
    torn = cv2.addWeighted(np.roll(a, 9, axis=1), 0.5, b, 0.5, 0)
    torn[:, ::40] = a[:, ::40]
    assert gradient_energy(torn) > 1.1 * gradient_energy(mix)


def test_tail_of_another_aspect_ratio_is_cropped_not_stretched() -> None:
    img = data.astronaut()  # 512 x 512: square output 720 x 720
    wide = np.ascontiguousarray(data.rocket())  # 640 x 427: another aspect ratio
    logs: list[str] = []
    last = None
    for last in frames(EngineInputs(prompt="", image=img, tail_image=wide), log=logs.append):  # noqa: B007
        pass
    x0 = (640 - 427) // 2
    expected = documented_resize(np.ascontiguousarray(wide[:, x0 : x0 + 427]), OUT)
    assert last is not None and psnr(last, expected) >= 45.0
    stretched = documented_resize(wide, OUT)
    assert psnr(last, stretched) < 25.0
    assert any("crop" in line and "not stretched" in line for line in logs)
