"""Kling's request fields → Wan's pipeline arguments (pure arithmetic; no torch).

- the image goes in at the model's working size: the input's aspect, about ``max_area`` pixels, both
  sides multiples of ``multiple`` (16 for the 14B models, 32 for TI2V-5B);
- ``cfg_scale`` c in [0, 1] → guidance ``1 + 2·c·(g0 − 1)``: 0 → 1 (no unconditional pass), 0.5 → g0;
- ``duration`` → segments of one 5 s generation each (81 frames at 16 fps, 121 at 24 fps); a 10 s clip
  is two segments, the second starting from the first one's last frame, which it does not repeat;
- the motion brush's step windows (fractions of the steps → step indices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "SEGMENT_S",
    "BrushWindows",
    "brush_windows",
    "guidance_for",
    "latent_frames",
    "segment_frames",
    "segments_for",
    "working_size",
]

#: Seconds one generation covers (Wan's training length: 81 frames at 16 fps, 121 at 24 fps).
SEGMENT_S = 5


def working_size(width: int, height: int, max_area: int, multiple: int) -> tuple[int, int]:
    """(w, h) for the model: the input's aspect ratio, at most ``max_area`` pixels, multiples of ``multiple``."""
    if width <= 0 or height <= 0:
        raise ValueError("image sides must be positive")
    aspect = height / width
    h = math.sqrt(max_area * aspect)
    w = h / aspect
    hm = max(int(h + 1e-6) // multiple, 1) * multiple  # 1e-6: sqrt(399360 * 480 / 832) is 479.99...
    wm = max(int(w + 1e-6) // multiple, 1) * multiple
    return wm, hm


def guidance_for(cfg_scale: float, default: float, *, no_cfg: bool = False) -> float:
    """Wan's ``guidance_scale`` for Kling's ``cfg_scale``; 1.0 (no unconditional pass) for 0 or ``no_cfg``."""
    if no_cfg:
        return 1.0
    c = min(max(float(cfg_scale), 0.0), 1.0)
    return 1.0 + 2.0 * c * (default - 1.0)


def segment_frames(fps: float) -> int:
    """Frames of one segment: ``SEGMENT_S · fps + 1`` (81 at 16 fps, 121 at 24 fps; always 4k + 1)."""
    n = round(SEGMENT_S * fps) + 1
    if (n - 1) % 4:
        raise ValueError(f"{fps} fps gives {n} frames per segment, not 4k+1")
    return n


def segments_for(duration_s: int) -> int:
    """Segments a clip of ``duration_s`` seconds is made of (5 s → 1, 10 s → 2)."""
    return max(1, math.ceil(duration_s / SEGMENT_S))


def latent_frames(num_frames: int, temporal: int = 4) -> int:
    """Latent frames of ``num_frames`` video frames (frame 0 alone, then one per ``temporal``)."""
    return (num_frames - 1) // temporal + 1


@dataclass(frozen=True)
class BrushWindows:
    """Step indices of the motion brush (Time-to-Move's dual clock), out of ``steps``.

    Sampling starts at step ``tweak`` from the reference noised to that step's level; the latents
    entering steps ``tweak .. tstrong-1`` equal the noised reference inside the dynamic masks, and
    those entering steps ``tweak .. static-1`` inside the static mask.
    """

    steps: int
    tweak: int
    tstrong: int
    static: int

    def describe(self) -> str:
        return (
            f"brush windows: start at step {self.tweak}/{self.steps}, dynamic regions held until step "
            f"{self.tstrong}, static region until step {self.static}"
        )


def brush_windows(steps: int, tweak: float, tstrong: float, static: float) -> BrushWindows:
    """Fractions of the steps → indices; at least one step runs free and ``tweak < tstrong``."""
    t0 = min(round(tweak * steps), steps - 1)
    t1 = min(max(round(tstrong * steps), t0 + 1), steps)
    ts = min(max(round(static * steps), t1), steps)
    return BrushWindows(steps=steps, tweak=t0, tstrong=t1, static=ts)
