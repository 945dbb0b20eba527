"""Motion engine picture quality figures, measured on decoded MP4s.

    .venv/bin/python benchmarks/motion_quality.py [--skip-camera]

1. Colour: a ColorChecker chart (plus primaries) through ``VideoWriter`` and back: CIEDE2000 mean and max.
2. Keyframe pop: a brush clip (left half static) rendered at 5 s and 10 s: the static region's largest
   frame-to-frame mean change (grey levels) and the number of keyframes.
3. First frame: PSNR of the decoded frame 0 of a prompt render against the resized input, on four photos.
4. Camera: for each issue phrase, the similarity fitted (ORB + RANSAC) from frame 0 to the last frame and
   from frame 75 to frame 120 (scale, on-screen ccw angle, dx, dy of the centre, in pixels at 480x320).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

from kinema.engines import DynamicBrush, EngineInputs
from kinema.engines.motion import frames, render
from kinema.media.encode import VideoWriter, read_frames

# The colour chart and its measurement are the encoder tests' own (tests/test_encode.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_encode import CHART, chart_image, delta_e, encode, patch_means

PHRASES = (
    "drone shot flying forward",
    "handheld camera shake",
    "the camera moves left along the shore",
    "slow zoom into the pagoda roof",
    "the camera circles the temple to the left",
    "crane shot rising up",
    "tracking shot following the boat",
    "the camera doesn't move",
    "pans from right to left",
    "zoom in slowly then pull back",
    "the camera pulls back",
    "the camera tilts up",
    "the camera rotates clockwise",
)


def chart_delta_e(tmp: Path) -> tuple[float, float]:
    decoded = encode(tmp / "chart.mp4", [chart_image()] * 10)
    de = delta_e(CHART.astype(np.float64), patch_means(decoded[-1]))
    return float(de.mean()), float(de.max())


def keyframe_pop(tmp: Path, seconds: int) -> tuple[float, int]:
    img = data.rocket()[30:390]
    h, w = img.shape[:2]
    static = np.zeros((h, w), bool)
    static[:, : w // 2] = True
    moving = np.zeros((h, w), np.uint8)
    cv2.ellipse(moving, (480, 200), (60, 45), 0, 0, 360, 1, -1)
    inputs = EngineInputs(
        prompt="",
        image=img,
        duration_s=seconds,
        static_mask=static,
        dynamic_brushes=(DynamicBrush(moving.astype(bool), ((480, 160), (560, 190))),),
    )
    out = tmp / f"pop{seconds}.mp4"
    render(inputs, out, callback=lambda _p: None, should_cancel=lambda: False, log=lambda _m: None)
    g = read_frames(out).astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    region = np.zeros(g.shape[1:], bool)
    region[8:-8, 8 : g.shape[2] // 2 - 8] = True
    jump = max(float(np.abs(g[i] - g[i - 1])[region].mean()) for i in range(1, len(g)))
    with av.open(str(out)) as container:
        keys = sum(1 for p in container.demux(video=0) if p.is_keyframe)
    return jump, keys


def first_frame_psnr(tmp: Path, name: str) -> float:
    img = getattr(data, name)()
    out = tmp / f"{name}.mp4"
    info = render(
        EngineInputs(prompt="the camera pans left", image=img),
        out,
        callback=lambda _p: None,
        should_cancel=lambda: False,
        log=lambda _m: None,
    )
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    shrink = info.width * info.height < img.shape[0] * img.shape[1]
    ref = cv2.resize(img, (info.width, info.height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return float(10 * np.log10(255.0**2 / np.mean((first.astype(np.float64) - ref) ** 2)))


def fit(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    orb = cv2.ORB_create(3000, fastThreshold=10)
    ka, da = orb.detectAndCompute(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), None)
    kb, db = orb.detectAndCompute(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)
    found = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    src = np.float32([ka[m.queryIdx].pt for m in found])
    dst = np.float32([kb[m.trainIdx].pt for m in found])
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    h, w = a.shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    moved = m[:, :2] @ c + m[:, 2] - c
    return (
        float(np.hypot(m[0, 0], m[1, 0])),
        float(np.degrees(np.arctan2(-m[1, 0], m[0, 0]))),
        float(moved[0]),
        float(moved[1]),
    )


def camera_fits(tmp: Path) -> None:
    size = (480, 320)
    print(f"{'prompt':42} {'frame 0 -> 149: scale angle dx dy':>36}   {'frame 75 -> 120':>28}")
    for prompt in PHRASES:
        path = tmp / "cam.mp4"
        with VideoWriter(path, *size, 30) as writer:
            for frame in frames(EngineInputs(prompt=prompt, image=data.chelsea()), size):
                writer.write(frame)
        clip = read_frames(path)
        whole, mid = fit(clip[0], clip[-1]), fit(clip[75], clip[120])
        print(
            f"{prompt:42} {whole[0]:8.3f} {whole[1]:6.2f} {whole[2]:7.1f} {whole[3]:7.1f}   "
            f"{mid[0]:7.4f} {mid[1]:6.2f} {mid[2]:6.1f} {mid[3]:6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-camera", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mean, worst = chart_delta_e(tmp)
        print(f"colour chart round trip: dE00 mean {mean:.2f}, max {worst:.2f}")
        for seconds in (5, 10):
            jump, keys = keyframe_pop(tmp, seconds)
            print(
                f"{seconds:2d} s brush clip: static region largest frame-to-frame change {jump:.3f} grey levels, "
                f"{keys} keyframe(s)"
            )
        for name in ("astronaut", "rocket", "coffee", "chelsea"):
            print(f"first frame PSNR, {name}: {first_frame_psnr(tmp, name):.2f} dB")
        if not args.skip_camera:
            camera_fits(tmp)


if __name__ == "__main__":
    main()
