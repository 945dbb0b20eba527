"""Procedural ambient effects drawn over frames: snow, rain, drifting fog and clouds.

Each effect is deterministic given its seed; ``apply(frame, i, opacity)`` draws frame ``i`` in
place and leaves the frame untouched at opacity 0. All blending is uint8 OpenCV arithmetic.

Depth is faked the way a lens would show it: every flake or drop has a depth, and size, speed,
sideways drift (parallax) and blur all follow it together (near flakes are big, fast and out of
focus; far ones small, slow and sharp). Fog and clouds are layers of fractal noise that drift at
different speeds (the near layer faster) and are thicker far away (high in the frame, towards the
horizon) than in front. An intensity (``prompt.LOW`` / ``NORMAL`` / ``HIGH``) scales the density
and the speed.

When the camera moves (``EffectStack.follow``), flakes, drops and fog layers are carried with the
picture, the nearer ones further: a flake at depth ``d`` moves by ``(1 + PARALLAX * (1 - d))`` times
the picture's own shift, so near flakes sweep past faster than far ones (parallax).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["EFFECTS", "EffectStack", "Haze", "Rain", "Snow"]

#: Sizes and speeds below are for a frame whose short side is this many pixels.
_REFERENCE = 720.0
#: How much further than the picture the nearest flake is carried by a camera move (see the module doc).
PARALLAX = 1.5


class _Scratch:
    """Full-frame work buffers reused across frames (fresh large allocations cost page faults)."""

    def __init__(self, size: tuple[int, int]):
        w, h = size
        self.alpha = np.zeros((h, w), np.uint8)
        self.layer = np.zeros((h, w), np.uint8)
        self.a3, self.inv, self.keep, self.tint = (np.empty((h, w, 3), np.uint8) for _ in range(4))
        self.shift: np.ndarray | None = None  # (n, 2) picture shift per frame, set by EffectStack.follow

    def carried(self, i: int) -> np.ndarray:
        """The picture's shift (dx, dy) at frame ``i``: (0, 0) when the camera does not move."""
        if self.shift is None or len(self.shift) == 0:
            return np.zeros(2)
        shift: np.ndarray = self.shift[min(i, len(self.shift) - 1)]
        return shift

    def blend_toward(self, frame: np.ndarray, alpha: np.ndarray, color: tuple[int, int, int]) -> None:
        """In place: ``frame = frame * (1 - a) + color * a`` with ``a = alpha / 255`` (uint8 arithmetic)."""
        cv2.merge([alpha, alpha, alpha], dst=self.a3)
        cv2.bitwise_not(self.a3, dst=self.inv)
        cv2.multiply(frame, self.inv, dst=self.keep, scale=1.0 / 255.0)
        cv2.multiply(self.a3, (color[0] / 255.0, color[1] / 255.0, color[2] / 255.0, 0.0), dst=self.tint)
        cv2.add(self.keep, self.tint, dst=frame)


def _speed(intensity: float) -> float:
    """Speed factor of an intensity: 0.8 for LOW (0.5), 1 for NORMAL, 1.24 for HIGH (1.6)."""
    return 0.6 + 0.4 * intensity


class Snow:
    """Flakes at depths in [0, 1] (0 nearest), drawn in three depth bands, each blurred by its own amount."""

    color = (250, 250, 255)
    #: (depth from, depth to, blur sigma in reference pixels): near flakes are out of focus.
    bands = ((0.0, 0.25, 2.2), (0.25, 0.6, 0.9), (0.6, 1.0, 0.0))

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, scratch: _Scratch, intensity: float = 1.0):
        w, h = size
        k = min(w, h) / _REFERENCE
        n = max(int(5.5e-4 * w * h * intensity), 20)
        self.size, self.scratch, self.k = size, scratch, k
        self.depth = rng.uniform(0.0, 1.0, n) ** 0.7  # more far flakes than near ones
        near = 1.0 - self.depth
        speed = _speed(intensity)
        self.r = k * (0.7 + 3.8 * near**2)
        self.x0, self.y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
        self.vy = k * speed * (0.6 + 3.4 * near)
        self.vx = k * speed * (0.25 + 0.9 * near) * rng.normal(1.0, 0.3, n)  # wind: parallax with depth
        self.sway = k * (1.0 + 7.0 * near) * rng.uniform(0.5, 1.0, n)
        self.omega = 2 * math.pi / rng.uniform(45.0, 110.0, n)
        self.phase = rng.uniform(0, 2 * math.pi, n)
        self.level = np.clip(150 + 105 * near + rng.normal(0, 12, n), 90, 255)

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        if opacity <= 0:
            return
        w, h = self.size
        pad = 12.0 * self.k
        cx, cy = self.scratch.carried(i)
        carry = 1.0 + PARALLAX * (1.0 - self.depth)
        y = np.mod(self.y0 + self.vy * i + cy * carry, h + 2 * pad) - pad
        x = (
            np.mod(self.x0 + self.vx * i + cx * carry + self.sway * np.sin(self.omega * i + self.phase), w + 2 * pad)
            - pad
        )
        alpha, layer = self.scratch.alpha, self.scratch.layer
        alpha[...] = 0
        levels = np.round(self.level * opacity).astype(int)
        # Motion blur: a flake is stretched along its fall by half a frame's travel.
        stretch = 0.5 * self.vy
        for lo, hi, sigma in self.bands:
            pick = np.flatnonzero((self.depth >= lo) & (self.depth < hi))
            if pick.size == 0:
                continue
            layer[...] = 0
            xs, ys = np.round(x[pick] * 16).astype(int), np.round(y[pick] * 16).astype(int)
            rs = np.round(self.r[pick] * 16).astype(int)
            ss = np.round((self.r[pick] + stretch[pick]) * 16).astype(int)
            for xi, yi, ri, si, li in zip(
                xs.tolist(), ys.tolist(), rs.tolist(), ss.tolist(), levels[pick].tolist(), strict=True
            ):
                if si - ri < 8:  # stretched by less than half a pixel: a disc
                    cv2.circle(layer, (xi, yi), ri, li, -1, cv2.LINE_AA, 4)
                else:
                    cv2.ellipse(layer, (xi, yi), (ri, si), 0.0, 0.0, 360.0, li, -1, cv2.LINE_AA, 4)
            if sigma > 1.5:  # wide blur at half resolution (a quarter of the cost)
                half = cv2.resize(layer, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
                cv2.GaussianBlur(half, (0, 0), sigma * self.k / 2, dst=half)
                cv2.resize(half, (w, h), dst=layer, interpolation=cv2.INTER_LINEAR)
            elif sigma > 0:
                cv2.GaussianBlur(layer, (0, 0), sigma * self.k, dst=layer)
            cv2.max(alpha, layer, dst=alpha)
        self.scratch.blend_toward(frame, alpha, self.color)


class Rain:
    """Motion-blurred streaks at depths in [0, 1]: near streaks longer, wider, brighter; the scene darkens a little."""

    color = (210, 216, 226)
    #: Darkening (fraction toward :attr:`shade`) at full opacity and normal intensity.
    darken = 0.12
    shade = (38, 44, 56)

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, scratch: _Scratch, intensity: float = 1.0):
        w, h = size
        k = min(w, h) / _REFERENCE
        n = max(int(4.0e-4 * w * h * intensity), 10)
        self.size, self.scratch, self.k = size, scratch, k
        self.intensity = intensity
        self.depth = rng.uniform(0.0, 1.0, n) ** 0.8
        near = 1.0 - self.depth
        self.x0, self.y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
        self.v = k * _speed(intensity) * (18.0 + 26.0 * near)  # px per frame
        # The streak is what the drop travels while the shutter is open (about 1.4 frames here).
        self.length = 1.4 * self.v * rng.uniform(0.85, 1.15, n)
        self.slant = rng.normal(0.16, 0.02, n)  # dx per dy: about 9 degrees from vertical
        self.width = np.where(near > 0.7, 2, 1)
        self.level = np.clip(45 + 95 * near + rng.normal(0, 12, n), 25, 170)
        self._shade = np.empty((h, w, 3), np.uint8)
        self._shade[...] = self.shade

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        if opacity <= 0:
            return
        w, h = self.size
        d = self.darken * opacity * min(self.intensity, 1.6) ** 0.5
        cv2.addWeighted(frame, 1.0 - d, self._shade, d, 0.0, dst=frame)
        span = h + float(self.length.max()) + 2
        cx, cy = self.scratch.carried(i)
        carry = 1.0 + PARALLAX * (1.0 - self.depth)
        y = np.mod(self.y0 + self.v * i + cy * carry, span) - self.length
        x = np.mod(self.x0 + self.slant * self.v * i + cx * carry, w + 60.0) - 30.0
        alpha = self.scratch.alpha
        alpha[...] = 0
        levels = np.round(self.level * opacity).astype(int)
        for xi, yi, li, si, wi, lv in zip(x, y, self.length, self.slant, self.width, levels, strict=True):
            # The upper half of the streak (where the drop was earlier in the exposure) is fainter.
            p0 = (round(xi * 16), round(yi * 16))
            pm = (round((xi + 0.5 * si * li) * 16), round((yi + 0.5 * li) * 16))
            p1 = (round((xi + si * li) * 16), round((yi + li) * 16))
            cv2.line(alpha, p0, pm, int(lv) // 2, int(wi), cv2.LINE_AA, 4)
            cv2.line(alpha, pm, p1, int(lv), int(wi), cv2.LINE_AA, 4)
        cv2.GaussianBlur(alpha, (3, 3), 0, dst=alpha)
        self.scratch.blend_toward(frame, alpha, self.color)


class Haze:
    """Fog or clouds: two layers of periodic fractal noise drifting sideways, the near one faster.

    Fog is thickest high in the frame (far away, towards the horizon) and thins towards the bottom
    (in front of the camera); clouds fill the upper part of the frame.
    """

    def __init__(
        self,
        size: tuple[int, int],
        rng: np.random.Generator,
        scratch: _Scratch,
        *,
        kind: str = "fog",
        intensity: float = 1.0,
    ):
        if kind not in ("fog", "clouds"):
            raise ValueError(f"haze kind must be 'fog' or 'clouds', got {kind!r}")
        w, h = size
        self.size, self.scratch = size, scratch
        self.step = 8  # texture pixels are 8 output pixels
        tw, th = math.ceil(w / self.step) + 1, math.ceil(h / self.step) + 1
        rows = np.linspace(0.0, 1.0, th)[:, None]  # 0 at the top
        k = min(w, h) / _REFERENCE
        density = min(intensity, 1.6) ** 0.6
        if kind == "fog":
            self.color = (224, 228, 233)
            # far (top) 1.0 -> front (bottom) 0.3
            profile = 0.3 + 0.7 * np.clip(1.15 - rows * 1.1, 0.0, 1.0) ** 1.5
            self.max_alpha, self.drift, threshold, gain = 0.62 * density, (0.25, 0.6), 0.2, 1.5
        else:
            self.color = (246, 246, 249)
            profile = np.clip(1.1 - 1.5 * rows, 0.0, 1.0)
            self.max_alpha, self.drift, threshold, gain = 0.72 * density, (0.35, 0.9), 0.42, 2.2
        self.drift = (self.drift[0] * k * _speed(intensity), self.drift[1] * k * _speed(intensity))
        self.layers = []
        for beta, scale in ((2.6, 1.0), (2.2, 0.7)):  # far layer, near layer (lighter)
            tex = _fractal_noise(rng, (th, 2 * tw), beta=beta)
            tex = np.clip((tex - threshold) * gain, 0, 1) * profile * scale
            self.layers.append(tex.astype(np.float32))
        self.direction = 1.0 if rng.random() < 0.5 else -1.0
        self._small = np.empty((th, tw), np.float32)

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        if opacity <= 0:
            return
        w, h = self.size
        tw, thh = math.ceil(w / self.step) + 1, math.ceil(h / self.step) + 1
        total = np.zeros((thh, tw), np.float32)
        cx = float(self.scratch.carried(i)[0])
        for tex, speed, carry in zip(self.layers, self.drift, (1.0, 1.3), strict=True):
            shift = (self.direction * speed * i + carry * cx) / self.step
            m = np.asarray(
                [[1, 0, -shift], [0, 1, 0]], dtype=np.float32
            )  # sideways only: the density profile is vertical
            cv2.warpAffine(
                tex,
                m,
                (tw, thh),
                dst=self._small,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_WRAP,
            )
            # screen-blend the layers: 1 - (1 - a)(1 - b)
            total += self._small - total * self._small
        small = cv2.convertScaleAbs(total, alpha=255.0 * min(self.max_alpha, 0.9) * opacity)
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
    noise01: np.ndarray = np.clip(0.5 + field / 4.0, 0.0, 1.0)
    return noise01


EFFECTS = ("fog", "clouds", "rain", "snow")  # drawing order, back to front


class EffectStack:
    """The effects a prompt asked for, drawn back to front, each seeded from ``seed`` and its name.

    ``intensity`` maps an effect name to its intensity factor (default 1).
    """

    def __init__(
        self, names: list[str], size: tuple[int, int], seed: int, *, intensity: dict[str, float] | None = None
    ):
        unknown = set(names) - set(EFFECTS)
        if unknown:
            raise ValueError(f"unknown effects: {sorted(unknown)}")
        self.effects: list[Snow | Rain | Haze] = []
        if not names:
            return
        levels = intensity or {}
        scratch = self._scratch = _Scratch(size)
        for index, name in enumerate(EFFECTS):
            if name not in names:
                continue
            rng = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, index])
            level = float(levels.get(name, 1.0))
            if name == "snow":
                self.effects.append(Snow(size, rng, scratch, level))
            elif name == "rain":
                self.effects.append(Rain(size, rng, scratch, level))
            else:
                self.effects.append(Haze(size, rng, scratch, kind=name, intensity=level))

    def __bool__(self) -> bool:
        return bool(self.effects)

    def follow(self, shift: np.ndarray) -> None:
        """Carry the effects with a camera move: ``shift`` (n, 2) is where the picture's centre is drawn at
        each frame minus the centre, in output pixels (``camera.CameraPlan.content_shift``)."""
        if self.effects:
            self._scratch.shift = np.asarray(shift, dtype=np.float64)

    def apply(self, frame: np.ndarray, i: int, opacity: float) -> None:
        for effect in self.effects:
            effect.apply(frame, i, opacity)
