"""H.264 encoding: colour conversion and tags, colour fidelity, no keyframe pop, first-frame quality.

Everything is measured on the decoded MP4 (PyAV), with reference maths written here
(BT.709 / sRGB per ITU-R BT.709 and IEC 61966-2-1 via scikit-image's CIEDE2000).
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import color, data

from kinema.engines import DynamicBrush, EngineInputs
from kinema.engines.motion import render
from kinema.media.encode import VideoWriter, read_frames

# ColorChecker Classic patches as sRGB 8-bit values (published reference values), then pure primaries.
CHART = np.array(
    [
        (115, 82, 68),
        (194, 150, 130),
        (98, 122, 157),
        (87, 108, 67),
        (133, 128, 177),
        (103, 189, 170),
        (214, 126, 44),
        (80, 91, 166),
        (193, 90, 99),
        (94, 60, 108),
        (157, 188, 64),
        (224, 163, 46),
        (56, 61, 150),
        (70, 148, 73),
        (175, 54, 60),
        (231, 199, 31),
        (187, 86, 149),
        (8, 133, 161),
        (243, 243, 242),
        (200, 200, 200),
        (160, 160, 160),
        (122, 122, 121),
        (85, 85, 85),
        (52, 52, 52),
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 0),
        (0, 255, 255),
        (255, 0, 255),
    ],
    np.uint8,
)
COLS, ROWS, PATCH = 6, 5, 120  # 720 x 600


def chart_image() -> np.ndarray:
    img = np.zeros((ROWS * PATCH, COLS * PATCH, 3), np.uint8)
    for k, rgb in enumerate(CHART):
        r, c = divmod(k, COLS)
        img[r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH] = rgb
    return img


def patch_means(frame: np.ndarray) -> np.ndarray:
    """Mean colour of the central half of every patch (away from chroma-subsampled edges)."""
    q = PATCH // 4
    out = []
    for k in range(len(CHART)):
        r, c = divmod(k, COLS)
        out.append(
            frame[r * PATCH + q : (r + 1) * PATCH - q, c * PATCH + q : (c + 1) * PATCH - q].reshape(-1, 3).mean(0)
        )
    return np.array(out)


def encode(path: Path, clip: list[np.ndarray] | np.ndarray) -> np.ndarray:
    h, w = clip[0].shape[:2]
    with VideoWriter(path, w, h, 30) as writer:
        for frame in clip:
            writer.write(frame)
    return read_frames(path)


def delta_e(a_rgb: np.ndarray, b_rgb: np.ndarray) -> np.ndarray:
    lab_a = color.rgb2lab(a_rgb[None].astype(np.float64) / 255.0)[0]
    lab_b = color.rgb2lab(b_rgb[None].astype(np.float64) / 255.0)[0]
    return color.deltaE_ciede2000(lab_a, lab_b)


def bt709_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Limited-range BT.709 Y'CbCr (8-bit planes) to R'G'B' in [0, 255], written from the standard's matrix."""
    yf = (y.astype(np.float64) - 16.0) * (255.0 / 219.0)
    cb = (u.astype(np.float64) - 128.0) * (255.0 / 224.0)
    cr = (v.astype(np.float64) - 128.0) * (255.0 / 224.0)
    kr, kb = 0.2126, 0.0722
    kg = 1.0 - kr - kb
    r = yf + 2 * (1 - kr) * cr
    b = yf + 2 * (1 - kb) * cb
    g = (yf - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], -1), 0, 255)


def test_stream_carries_bt709_tags_and_limited_range(tmp_path: Path) -> None:
    encode(tmp_path / "c.mp4", [chart_image()] * 3)
    with av.open(str(tmp_path / "c.mp4")) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        assert (ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range) == (1, 1, 1, 1)
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_range) == (1, 1)  # ITU709, MPEG (limited)
        # The pixels really are BT.709: converting the decoded planes with the BT.709 matrix written here
        # gives back the chart (a BT.601 matrix would be off by many levels on the saturated patches).
        planes = frame.to_ndarray()  # yuv420p as (3/2 H, W)
    h, w = chart_image().shape[:2]
    y = planes[:h]
    u = cv2.resize(planes[h : h + h // 4].reshape(h // 2, w // 2), (w, h), interpolation=cv2.INTER_NEAREST)
    v = cv2.resize(planes[h + h // 4 :].reshape(h // 2, w // 2), (w, h), interpolation=cv2.INTER_NEAREST)
    rgb = bt709_to_rgb(y, u, v)
    err = np.abs(patch_means(rgb) - CHART.astype(np.float64)).max()
    assert err < 3.0, err


def test_colour_chart_round_trip_within_delta_e_1_5(tmp_path: Path) -> None:
    chart = chart_image()
    decoded = encode(tmp_path / "c.mp4", [chart] * 30)
    for k in (0, 29):
        de = delta_e(CHART.astype(np.float64), patch_means(decoded[k]))
        assert de.mean() <= 1.5 and de.max() <= 1.5, (k, de.mean(), de.max())


def _static_jumps(decoded: np.ndarray, region: np.ndarray) -> float:
    """Largest mean |change| (grey levels) of ``region`` between consecutive decoded frames."""
    g = decoded.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    return float(max(np.abs(g[i] - g[i - 1])[region].mean() for i in range(1, len(g))))


@pytest.mark.parametrize("seconds", [5, 10])
def test_no_keyframe_pop_in_a_static_region(tmp_path: Path, seconds: int) -> None:
    """A clip whose left half never changes while the right half moves: no frame jumps (engine render)."""
    img = data.rocket()[30:390]  # 640 x 360 -> renders at 1280 x 720
    h, w = img.shape[:2]
    static = np.zeros((h, w), bool)
    static[:, : w // 2] = True
    moving = np.zeros((h, w), bool)
    cv2.ellipse(moving.view(np.uint8), (480, 200), (60, 45), 0, 0, 360, 1, -1)
    brush = DynamicBrush(moving, ((480, 160), (560, 190)))
    inputs = EngineInputs(prompt="", image=img, duration_s=seconds, static_mask=static, dynamic_brushes=(brush,))
    out = tmp_path / "pop.mp4"
    render(inputs, out, callback=lambda _p: None, should_cancel=lambda: False, log=lambda _m: None)
    decoded = read_frames(out)
    assert len(decoded) == 30 * seconds
    region = np.zeros(decoded.shape[1:3], bool)
    region[8:-8, 8 : decoded.shape[2] // 2 - 8] = True
    jump = _static_jumps(decoded, region)
    assert jump <= 0.5, jump
    with av.open(str(out)) as container:
        keyframes = sum(1 for packet in container.demux(video=0) if packet.is_keyframe)
    assert keyframes == 1


@pytest.mark.parametrize("name", ["astronaut", "rocket", "coffee"])
def test_first_frame_is_at_least_38_db(tmp_path: Path, name: str) -> None:
    """The decoded first frame of an engine render against the resized input, on detailed photos."""
    img = getattr(data, name)()
    inputs = EngineInputs(prompt="the camera pans left", image=img)
    out = tmp_path / "first.mp4"
    info = render(inputs, out, callback=lambda _p: None, should_cancel=lambda: False, log=lambda _m: None)
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    w, h = info.width, info.height
    shrink = w * h < img.shape[0] * img.shape[1]
    expected = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    mse = float(np.mean((first.astype(np.float64) - expected) ** 2))
    psnr = 10 * np.log10(255.0**2 / mse)
    assert psnr >= 38.0, (name, psnr)
