"""Procedural ambient effects drawn over frames: snow, rain, drifting fog and clouds.

Each effect is deterministic given its seed; ``apply(frame, i, opacity)`` draws frame ``i`` in
place and leaves the frame untouched at opacity 0. All blending is uint8 OpenCV arithmetic.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["EFFECTS", "Snow", "Rain", "Haze", "EffectStack"]


class _Scratch:
    """Full-frame work buffers reused across frames (fresh large allocations cost page faults)."""

    def __init__(self, size: tuple[int, int]):
        w, h = size
        self.alpha = np.zeros((h, w), np.uint8)
        self.a3, self.inv, self.keep, self.tint = (np.empty((h, w, 3), np.uint8) for _ in range(4))

    def blend_toward(self, frame: np.ndarray, alpha: np.ndarray, color: tuple[int, int, int]) -> None:
        """In place: ``frame = frame * (1 - a) + color * a`` with ``a = alpha / 255`` (uint8 arithmetic)."""
        cv2.merge([alpha, alpha, alpha], dst=self.a3)
        cv2.bitwise_not(self.a3, dst=self.inv)
        cv2.multiply(frame, self.inv, dst=self.keep, scale=1.0 / 255.0)
        cv2.multiply(self.a3, (color[0] / 255.0, color[1] / 255.0, color[2] / 255.0, 0.0), dst=self.tint)
        cv2.add(self.keep, self.tint, dst=frame)


class Snow:
    """Flakes of three depths falling with a sway; nearer flakes are bigger, brighter and faster."""

    color = (250, 250, 255)

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, scratch: _Scratch):
        w, h = size
        n = max(int(3.5e-4 * w * h), 20)
        self.size, self.scratch = size, scratch
        self.r = rng.uniform(0.8, 3.2, n)
        self.x0, self.y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
        self.vy = 0.5 + 0.6 * self.r
        self.vx = rng.normal(0.25, 0.2, n) * self.r
        self.sway = rng.uniform(2.0, 8.0, n)
        self.omega = 2 * math.pi / rng.uniform(40.0, 100.0, n)
        self.phase = rng.uniform(0, 2 * math.pi, n)
        self.level = np.clip(110 + 45 * self.r + rng.normal(0, 15, n), 60, 255)

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        if opacity <= 0:
            return
        w, h = self.size
        pad = 4.0
        y = np.mod(self.y0 + self.vy * i, h + 2 * pad) - pad
        x = np.mod(self.x0 + self.vx * i + self.sway * np.sin(self.omega * i + self.phase), w + 2 * pad) - pad
        alpha = self.scratch.alpha
        alpha[...] = 0
        levels = np.round(self.level * opacity).astype(int)
        for xi, yi, ri, li in zip(np.round(x * 16).astype(int), np.round(y * 16).astype(int),
                                  np.round(self.r * 16).astype(int), levels):
            cv2.circle(alpha, (int(xi), int(yi)), int(ri), int(li), -1, cv2.LINE_AA, 4)
        cv2.GaussianBlur(alpha, (3, 3), 0, dst=alpha)
        self.scratch.blend_toward(frame, alpha, self.color)


class Rain:
    """Thin slanted streaks falling fast."""

    color = (205, 212, 222)

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, scratch: _Scratch):
        w, h = size
        n = max(int(2.2e-4 * w * h), 10)
        self.size, self.scratch = size, scratch
        self.x0, self.y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
        self.v = rng.uniform(22.0, 38.0, n)
        self.length = self.v * rng.uniform(0.8, 1.2, n)
        self.slant = rng.normal(0.16, 0.03, n)
        self.level = rng.uniform(90, 190, n)

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        if opacity <= 0:
            return
        w, h = self.size
        span = h + float(self.length.max()) + 2
        y = np.mod(self.y0 + self.v * i, span) - self.length
        x = np.mod(self.x0 + self.slant * self.v * i, w + 40.0) - 20.0
        alpha = self.scratch.alpha
        alpha[...] = 0
        levels = np.round(self.level * opacity).astype(int)
        for xi, yi, li, si, li_ in zip(x, y, self.length, self.slant, levels):
            p0 = (int(round(xi * 16)), int(round(yi * 16)))
            p1 = (int(round((xi + si * li) * 16)), int(round((yi + li) * 16)))
            cv2.line(alpha, p0, p1, int(li_), 1, cv2.LINE_AA, 4)
        self.scratch.blend_toward(frame, alpha, self.color)


class Haze:
    """Drifting fog (dense low in the frame) or clouds (dense high): periodic fractal noise sliding sideways."""

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, scratch: _Scratch, *, kind: str = "fog"):
        if kind not in ("fog", "clouds"):
            raise ValueError(f"haze kind must be 'fog' or 'clouds', got {kind!r}")
        w, h = size
        self.size, self.scratch = size, scratch
        self.step = 8  # texture pixels are 8 output pixels
        tw, th = math.ceil(w / self.step) + 1, math.ceil(h / self.step) + 1
        self.texture = _fractal_noise(rng, (th, 2 * tw), beta=2.6 if kind == "fog" else 2.2)
        rows = np.linspace(0.0, 1.0, th)[:, None]
        if kind == "fog":
            self.color, self.max_alpha, self.drift = (226, 229, 233), 0.6, 0.5
            self.texture = np.clip((self.texture - 0.25) * 1.6, 0, 1) * (0.35 + 0.65 * rows)
        else:
            self.color, self.max_alpha, self.drift = (246, 246, 249), 0.7, 0.9
            self.texture = np.clip((self.texture - 0.45) * 2.4, 0, 1) * np.clip(1.1 - 1.2 * rows, 0, 1)
        self.texture = self.texture.astype(np.float32)
        self.direction = 1.0 if rng.random() < 0.5 else -1.0

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        if opacity <= 0:
            return
        w, h = self.size
        shift = self.direction * self.drift * i / self.step
        m = np.float32([[1, 0, shift], [0, 1, 0]])
        tw, thh = int(math.ceil(w / self.step)) + 1, int(math.ceil(h / self.step)) + 1
        small = cv2.warpAffine(self.texture, m, (tw, thh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_WRAP)
        small = cv2.convertScaleAbs(small, alpha=255.0 * self.max_alpha * opacity)
        alpha = cv2.resize(small, (tw * self.step, thh * self.step), interpolation=cv2.INTER_LINEAR)[:h, :w]
        self.scratch.blend_toward(frame, np.ascontiguousarray(alpha), self.color)


def _fractal_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Periodic 1/f^beta noise in [0, 1] of ``shape``."""
    noise = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    spectrum = np.fft.fft2(noise) / f ** (beta / 2.0)
    spectrum[0, 0] = 0.0
    field = np.real(np.fft.ifft2(spectrum))
    field = (field - field.mean()) / (field.std() + 1e-9)
    return np.clip(0.5 + field / 4.0, 0.0, 1.0)


EFFECTS = ("fog", "clouds", "rain", "snow")  # drawing order, back to front


class EffectStack:
    """The effects a prompt asked for, drawn back to front, each seeded from ``seed`` and its name."""

    def __init__(self, names: list[str], size: tuple[int, int], seed: int):
        unknown = set(names) - set(EFFECTS)
        if unknown:
            raise ValueError(f"unknown effects: {sorted(unknown)}")
        self.effects: list[Snow | Rain | Haze] = []
        if not names:
            return
        scratch = _Scratch(size)
        for index, name in enumerate(EFFECTS):
            if name not in names:
                continue
            rng = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, index])
            if name == "snow":
                self.effects.append(Snow(size, rng, scratch))
            elif name == "rain":
                self.effects.append(Rain(size, rng, scratch))
            else:
                self.effects.append(Haze(size, rng, scratch, kind=name))

    def __bool__(self) -> bool:
        return bool(self.effects)

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        for effect in self.effects:
            effect.apply(frame, i, opacity)
