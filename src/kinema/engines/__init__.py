"""The engine seam: how kinema loads an engine once and asks it for frames.

An engine module exposes a **loader**, run once per worker process before the worker reports
READY (Cog's ``setup``)::

    def load(settings: Settings, device: str) -> Engine

and the :class:`Engine` it returns makes one clip per request (Cog's ``predict``)::

    engine.fps                                   # native frame rate of what frames() yields
    engine.frames(inputs, size=(w, h), progress=..., should_cancel=..., log=...)
        -> Iterator[np.ndarray]                  # RGB uint8 frames, frame 0 first

``size`` is the output size the request's contract asks for (short side 720); an engine may yield
another size or frame rate (a 16 fps model at 832x480): the output-contract stage of
:mod:`kinema.pipeline` converts any engine's frames to 30 fps, exactly 30 x duration frames, at
``size``, with frame 0 equal to the input image resized. Engines call ``progress(Progress(...))``
per step, check ``should_cancel()`` at least once per step (raise :class:`kinema.errors.Cancelled`
when it is true) and raise :class:`kinema.errors.EngineError` for their own failures.

Specs (``Settings.engine``, ``KINEMA_ENGINE``): ``motion`` (the default), ``package.module:load``
or ``/path/to/file.py:load``. A spec naming ``render`` in a module that has a ``load`` means that
``load``: the spec of the old per-job entry point (``kinema.engines.motion:render``) keeps working.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

import numpy as np

from kinema.engines.geometry import OUTPUT_SHORT_SIDE, output_size
from kinema.errors import EngineLoadError

if TYPE_CHECKING:  # the settings module needs nothing from here; typing only
    from kinema.settings import Settings

__all__ = [
    "DEFAULT_SPEC",
    "OUTPUT_FPS",
    "OUTPUT_SHORT_SIDE",
    "Callback",
    "CancelCheck",
    "DynamicBrush",
    "Engine",
    "EngineInputs",
    "EngineLoader",
    "LogFn",
    "Progress",
    "ProgressFn",
    "RenderInfo",
    "find_loader",
    "load_engine",
    "output_size",
    "resolve_spec",
]

#: fal's Kling clips: 30 frames per second.
OUTPUT_FPS = 30
#: The default engine: the weight-free CPU motion engine.
DEFAULT_SPEC = "motion"
_ALIASES = {"motion": "kinema.engines.motion:load", "wan": "kinema.engines.wan:load"}


@dataclass(frozen=True)
class DynamicBrush:
    """A dynamic brush: the region that moves and the path it follows.

    ``mask`` is boolean (H, W) at the mask's own resolution (same aspect as the image).
    ``trajectory`` holds (x, y) points in pixels of the *input image*, origin bottom-left, y up.
    """

    mask: np.ndarray
    trajectory: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class EngineInputs:
    """A validated request with its inputs fetched and decoded."""

    prompt: str
    image: np.ndarray  # (H, W, 3) uint8 RGB, the input image at its own resolution
    duration_s: int = 5
    negative_prompt: str = ""
    cfg_scale: float = 0.5
    tail_image: np.ndarray | None = None  # (H', W', 3) uint8 RGB
    static_mask: np.ndarray | None = None  # (h, w) bool
    dynamic_brushes: tuple[DynamicBrush, ...] = field(default_factory=tuple)
    seed: int | None = None

    @property
    def num_frames(self) -> int:
        """Frames of the output clip (30 x duration)."""
        return OUTPUT_FPS * self.duration_s


@dataclass(frozen=True)
class Progress:
    """One step of a stage: ``Progress(7, 30, "step")`` reads ``step 7/30``.

    Stages: ``load``, ``step`` (denoising steps), ``render`` (frames made), ``decode``,
    ``interpolate``, ``encode``. ``step`` counts from 1. (Step and total come first so that
    ``Progress(step, total)`` of a per-frame engine keeps meaning frames rendered.)
    Build it with keywords or in this order: ``step, total, stage``.
    """

    step: int
    total: int
    stage: str = "render"

    def __str__(self) -> str:
        noun = {"encode": "encode frame", "render": "render frame"}.get(self.stage, self.stage)
        return f"{noun} {self.step}/{self.total}"


ProgressFn = Callable[[Progress], None]
CancelCheck = Callable[[], bool]
LogFn = Callable[[str], None]


class Engine(Protocol):
    """A loaded engine, reused for every request its worker runs."""

    @property
    def fps(self) -> float:
        """Native frame rate of the frames :meth:`frames` yields."""
        ...

    def frames(
        self,
        inputs: EngineInputs,
        *,
        size: tuple[int, int],
        progress: ProgressFn,
        should_cancel: CancelCheck,
        log: LogFn,
    ) -> Iterator[np.ndarray]:
        """Yield the clip's RGB uint8 frames at :attr:`fps`, frame 0 first."""
        ...


EngineLoader = Callable[["Settings", str], Engine]


# The old seam (a per-job ``render(inputs, output, callback=...)`` writing an MP4), still served by
# the motion engine's ``render`` until its rewrite lands; kinema's pipeline no longer calls it.
@dataclass(frozen=True)
class RenderInfo:
    width: int
    height: int
    fps: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


Callback = ProgressFn


def resolve_spec(spec: str) -> str:
    """The ``module:attr`` or ``file.py:attr`` a spec names (``motion`` and old aliases resolved)."""
    spec = spec.strip() or DEFAULT_SPEC
    return _ALIASES.get(spec, spec)


def _import(target: str) -> ModuleType:
    if not target.endswith(".py"):
        return importlib.import_module(target)
    path = Path(target).resolve()
    name = f"kinema_engine_{abs(hash(str(path)))}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    # Let the file import its siblings (e.g. a shared helper beside it).
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise EngineLoadError(f"cannot load engine file {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def find_loader(spec: str) -> EngineLoader:
    """The loader a spec names, imported but not run."""
    resolved = resolve_spec(spec)
    target, sep, attr = resolved.rpartition(":")
    if not sep or not target or not attr:
        raise EngineLoadError(f"engine spec must be 'motion', 'module:load' or '/path/file.py:load', got {spec!r}")
    try:
        module = _import(target)
    except EngineLoadError:
        raise
    except Exception as exc:
        raise EngineLoadError(f"cannot import engine {spec!r}: {type(exc).__name__}: {exc}") from exc
    if attr == "render" and callable(getattr(module, "load", None)):
        attr = "load"
    loader = getattr(module, attr, None)
    if not callable(loader):
        raise EngineLoadError(f"engine {spec!r}: {target} has no loader {attr!r}")
    return loader  # type: ignore[no-any-return]


def load_engine(spec: str, settings: Settings, device: str) -> Engine:
    """Import the loader ``spec`` names and run it once: ``load(settings, device) -> Engine``.

    Any failure is an :class:`~kinema.errors.EngineLoadError` carrying the reason.
    """
    loader = find_loader(spec)
    try:
        engine = loader(settings, device)
    except EngineLoadError:
        raise
    except Exception as exc:
        raise EngineLoadError(f"engine {spec!r} failed to load on {device}: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(engine, "frames", None)) or not isinstance(getattr(engine, "fps", None), (int, float)):
        raise EngineLoadError(
            f"engine {spec!r}: its loader returned {type(engine).__name__}, not an engine (needs .fps and .frames())"
        )
    return engine
