"""The output contract: any engine's frames become 30 fps, 30 x duration frames, frame 0 = the input resized."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

from kinema.engines import EngineInputs, Progress
from kinema.engines.geometry import output_size, resize_image
from kinema.media.encode import read_frames
from kinema.pipeline import Pipeline, conform
from kinema.pipeline.contract import source_frames_needed
from kinema.settings import Settings

SIZE = (240, 160)


def texture() -> np.ndarray:
    """A wide textured strip (the coffee photo tiled) that shifts cleanly sideways."""
    img = resize_image(data.coffee(), (400, 200))
    return np.concatenate([img, img[:, ::-1]], axis=1)  # 800 x 200


def at_shift(x: float) -> np.ndarray:
    """The strip seen through a SIZE window moved ``x`` px to the right."""
    m = np.float32([[1, 0, -x], [0, 1, 0]])
    return cv2.warpAffine(texture(), m, (SIZE[0], SIZE[1] + 40))[20:-20]


def panning(fps: float, seconds: int, px_per_s: float) -> Iterator[np.ndarray]:
    """Frames of a pan at ``px_per_s``: frame k shows the strip shifted by ``k / fps * px_per_s``."""
    for k in range(source_frames_needed(fps, 30 * seconds)):
        yield at_shift(k / fps * px_per_s)


def shift_between(a: np.ndarray, b: np.ndarray) -> float:
    ga, gb = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in (a, b))
    (dx, _dy), _ = cv2.phaseCorrelate(ga, gb)
    return -dx


@pytest.mark.parametrize("seconds", [5, 10])
def test_a_16_fps_engine_becomes_exactly_30_x_duration_frames(seconds: int) -> None:
    first = next(panning(16, seconds, 96.0))
    progress: list[Progress] = []
    out = list(conform(panning(16, seconds, 96.0), fps=16, first=first, count=30 * seconds, progress=progress.append))
    assert len(out) == 30 * seconds
    assert all(f.shape == (SIZE[1], SIZE[0], 3) and f.dtype == np.uint8 for f in out)
    assert np.array_equal(out[0], first)  # frame 0 bit-exact
    assert progress[-1] == Progress(30 * seconds, 30 * seconds, "interpolate")
    # Interpolated, not the nearest source frame: frame i shows the pan at i / 30 s (96 px/s: 6 px between
    # source frames, so a repeated frame would be off by up to 3 px; measured errors here are <= 0.35 px).
    for i in (1, 4, 7, 11, 15, 22, 29):
        assert shift_between(out[0], out[i]) == pytest.approx(i / 30 * 96.0, abs=0.5), i


def test_frames_between_source_frames_follow_the_motion_instead_of_cross_fading() -> None:
    fps, speed = 16.0, 96.0  # 6 px between source frames: a cross-fade shows a double image
    src = list(panning(fps, 5, speed))
    out = list(conform(iter(src), fps=fps, first=src[0], count=150))
    # Output frame 15 is at t = 0.5 s = source frame 8 exactly; frame 16 lies between source frames 8 and 9.
    assert np.array_equal(out[15], src[8])
    truth = at_shift(16 / 30 * speed).astype(float)
    t = 16 / 30 * fps - 8
    blend = src[8].astype(float) * (1 - t) + src[9].astype(float) * t
    inner = np.s_[10:-10, 20:-20]
    err = np.abs(out[16].astype(float) - truth)[inner].mean()
    blend_err = np.abs(blend - truth)[inner].mean()
    assert err < 0.5 * blend_err, (err, blend_err)


def test_a_30_fps_engine_at_the_right_size_passes_straight_through() -> None:
    rng = np.random.default_rng(3)
    src = [rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8) for _ in range(150)]
    first = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    out = list(conform(iter(src), fps=30, first=first, count=150))
    assert len(out) == 150
    assert np.array_equal(out[0], first)
    assert all(out[i] is src[i] for i in range(1, 150))  # the engine's own arrays, untouched


def test_frames_of_another_size_are_resized_and_a_short_engine_holds_its_last_frame() -> None:
    rng = np.random.default_rng(4)
    src = [rng.integers(0, 256, (480, 832, 3), dtype=np.uint8) for _ in range(100)]
    first = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    lines: list[str] = []
    out = list(conform(iter(src), fps=30, first=first, count=150, log=lines.append))
    assert len(out) == 150 and out[99].shape == (SIZE[1], SIZE[0], 3)
    assert np.array_equal(out[99], resize_image(src[99], SIZE))
    assert all(np.array_equal(out[i], out[99]) for i in range(100, 150))
    assert any("fewer frames" in line for line in lines)


class SixteenFps:
    """A 16 fps engine that yields frames at its own 832 x 480, whatever size is asked."""

    fps = 16.0

    def frames(self, inputs, *, size, progress, should_cancel, log):  # type: ignore[no-untyped-def]
        base = resize_image(inputs.image, (832, 480))
        for k in range(source_frames_needed(self.fps, inputs.num_frames)):
            yield np.roll(base, 4 * k, axis=1)


@pytest.mark.parametrize("duration", [5, 10])
def test_the_pipeline_encodes_the_contract(tmp_path: Path, duration: int) -> None:
    image = data.astronaut()[:, 64:448]  # 384 x 512 (portrait)
    settings = Settings(output_short_side=180)
    pipe = Pipeline(settings, SixteenFps())
    out = tmp_path / "clip.mp4"
    clip = pipe.render(
        EngineInputs(prompt="x", image=image, duration_s=duration),
        out,
        progress=lambda p: None,
        should_cancel=lambda: False,
        log=lambda m: None,
    )
    w, h = output_size(384, 512, 180)
    assert (clip.width, clip.height) == (w, h) == (180, 240)
    frames = read_frames(out)
    assert frames.shape == (30 * duration, h, w, 3)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == 30
    # Frame 0 is the input image resized (bit-exact before encoding, see above; after H.264 at crf 18 on this
    # small clip the mean error measured 3.3 grey levels), far closer to it than a later frame is.
    expected = resize_image(image, (w, h)).astype(int)
    err0 = np.abs(frames[0].astype(int) - expected).mean()
    assert err0 < 4.0
    assert err0 < 0.5 * np.abs(frames[20].astype(int) - expected).mean()
