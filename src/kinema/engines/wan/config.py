"""The Wan engine's settings, read once from the environment (prefix ``KINEMA_WAN_``).

They live here, not in :class:`kinema.settings.Settings`, because only this engine reads them and
the engine is optional (``pip install 'kinema[diffusion]'``). Nothing here imports torch.

==============================  ================  ===============================================
variable                        default           meaning
==============================  ================  ===============================================
``KINEMA_WAN_MODEL``            (required)        a diffusers Wan image-to-video folder
``KINEMA_WAN_FLF_MODEL``        none              a second, FLF-capable folder for tail requests
``KINEMA_WAN_STEPS``            40                denoising steps (Wan's I2V default)
``KINEMA_WAN_MAX_AREA``         399360            pixels of the working size (480 x 832)
``KINEMA_WAN_DTYPE``            bfloat16          bfloat16, float16 or float32
``KINEMA_WAN_OFFLOAD``          none              none, model (CPU offload) or group
``KINEMA_WAN_VAE_TILING``       0                 decode/encode the VAE in tiles
``KINEMA_WAN_ATTENTION``        none              a diffusers attention backend (``flash``, ...)
``KINEMA_WAN_COMPILE``          0                 ``torch.compile`` the transformer(s) (opt-in)
``KINEMA_WAN_LORA``             none              ``path[:scale]`` entries, comma-separated
``KINEMA_WAN_LORA_NO_CFG``      auto              guidance 1 with the LoRA: auto = LoRA and <= 8 steps
``KINEMA_WAN_GUIDANCE``         per model         the guidance ``cfg_scale`` 0.5 maps to
``KINEMA_WAN_NEGATIVE_PROMPT``  fal's default     used when a request's negative prompt is empty
``KINEMA_WAN_BRUSH_TWEAK``      0.06              brush: sampling starts at this fraction of steps
``KINEMA_WAN_BRUSH_TSTRONG``    0.14              brush: dynamic regions held until this fraction
``KINEMA_WAN_BRUSH_STATIC``     0.8               brush: the static region held until this fraction
==============================  ================  ===============================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kinema.errors import EngineLoadError

__all__ = ["DTYPES", "FAL_NEGATIVE_PROMPT", "OFFLOADS", "Lora", "WanSettings"]

#: fal's default ``negative_prompt`` for Kling 1.0 image-to-video.
FAL_NEGATIVE_PROMPT = "blur, distort, and low quality"
DTYPES = ("bfloat16", "float16", "float32")
OFFLOADS = ("none", "model", "group")
_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
#: Step counts at or below this are distilled runs: a LoRA with ``LORA_NO_CFG=auto`` then forces guidance 1
#: (the 4- to 8-step distillation LoRAs are trained without classifier-free guidance).
DISTILLED_MAX_STEPS = 8


@dataclass(frozen=True)
class Lora:
    """A LoRA file from a local path and the scale it is applied with."""

    path: Path
    scale: float = 1.0


def _bool(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _fraction(name: str, raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise EngineLoadError(f"KINEMA_WAN_{name} must be a fraction of the steps in [0, 1], got {raw!r}")
    return value


def _loras(raw: str) -> tuple[Lora, ...]:
    out: list[Lora] = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        path, sep, scale = entry.rpartition(":")
        try:
            out.append(Lora(Path(path), float(scale)) if sep and path else Lora(Path(entry)))
        except ValueError:  # a ':' that is part of the path, not a scale
            out.append(Lora(Path(entry)))
    return tuple(out)


@dataclass(frozen=True)
class WanSettings:
    """Every knob of the Wan engine. Build with :meth:`from_env`."""

    model: Path | None = None
    flf_model: Path | None = None
    steps: int = 40
    max_area: int = 480 * 832
    dtype: str = "bfloat16"
    offload: str = "none"
    vae_tiling: bool = False
    attention: str | None = None
    compile: bool = False
    loras: tuple[Lora, ...] = ()
    #: None: automatic (a LoRA and at most :data:`DISTILLED_MAX_STEPS` steps).
    lora_no_cfg: bool | None = None
    #: None: the model's own default (5.0 for Wan 2.1, 3.5 for Wan 2.2 A14B, 5.0 for TI2V-5B).
    guidance: float | None = None
    negative_prompt: str = FAL_NEGATIVE_PROMPT
    brush_tweak: float = 0.06
    brush_tstrong: float = 0.14
    brush_static: float = 0.8

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WanSettings:
        """Read ``KINEMA_WAN_*``; a malformed value is an :class:`EngineLoadError` naming it."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            raw = env.get("KINEMA_WAN_" + name)
            return raw if raw is not None and raw.strip() != "" else None

        kw: dict[str, object] = {}
        try:
            if (raw := get("MODEL")) is not None:
                kw["model"] = Path(raw).expanduser()
            if (raw := get("FLF_MODEL")) is not None:
                kw["flf_model"] = Path(raw).expanduser()
            if (raw := get("STEPS")) is not None:
                kw["steps"] = int(raw)
            if (raw := get("MAX_AREA")) is not None:
                kw["max_area"] = int(raw)
            if (raw := get("DTYPE")) is not None:
                kw["dtype"] = _DTYPE_ALIASES.get(raw.strip().lower(), raw.strip().lower())
            if (raw := get("OFFLOAD")) is not None:
                kw["offload"] = raw.strip().lower()
            if (raw := get("VAE_TILING")) is not None:
                kw["vae_tiling"] = _bool(raw)
            if (raw := get("ATTENTION")) is not None and raw.strip().lower() not in {"none", "default"}:
                kw["attention"] = raw.strip()
            if (raw := get("COMPILE")) is not None:
                kw["compile"] = _bool(raw)
            if (raw := get("LORA")) is not None:
                kw["loras"] = _loras(raw)
            if (raw := get("LORA_NO_CFG")) is not None and raw.strip().lower() != "auto":
                kw["lora_no_cfg"] = _bool(raw)
            if (raw := get("GUIDANCE")) is not None:
                kw["guidance"] = float(raw)
            if (raw := env.get("KINEMA_WAN_NEGATIVE_PROMPT")) is not None:
                kw["negative_prompt"] = raw
            for name in ("TWEAK", "TSTRONG", "STATIC"):
                if (raw := get("BRUSH_" + name)) is not None:
                    kw["brush_" + name.lower()] = _fraction("BRUSH_" + name, raw)
        except ValueError as exc:
            raise EngineLoadError(f"bad KINEMA_WAN_* setting: {exc}") from exc
        settings = cls(**kw)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that cannot run (an :class:`EngineLoadError` naming the variable)."""
        if self.steps < 1:
            raise EngineLoadError(f"KINEMA_WAN_STEPS must be at least 1, got {self.steps}")
        if self.max_area < 16 * 16:
            raise EngineLoadError(f"KINEMA_WAN_MAX_AREA must be at least 256 pixels, got {self.max_area}")
        if self.dtype not in DTYPES:
            raise EngineLoadError(f"KINEMA_WAN_DTYPE must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.offload not in OFFLOADS:
            raise EngineLoadError(f"KINEMA_WAN_OFFLOAD must be one of {', '.join(OFFLOADS)}, got {self.offload!r}")
        if not self.brush_tweak < self.brush_tstrong <= 1.0:
            raise EngineLoadError(
                f"KINEMA_WAN_BRUSH_TWEAK ({self.brush_tweak}) must be below KINEMA_WAN_BRUSH_TSTRONG "
                f"({self.brush_tstrong})"
            )

    @property
    def no_cfg(self) -> bool:
        """Whether the configured LoRA forces guidance 1 (no unconditional pass)."""
        if not self.loras:
            return False
        if self.lora_no_cfg is not None:
            return self.lora_no_cfg
        return self.steps <= DISTILLED_MAX_STEPS
