"""The engine seam: one uniform entry point per engine.

An engine is a plain function::

    def render(inputs: EngineInputs, output: Path, *, callback: Callback,
               should_cancel: CancelCheck, log: LogFn) -> RenderInfo

It writes an H.264 MP4 to ``output`` (use :class:`kinema.media.encode.VideoWriter`),
calls ``callback(Progress(step, total))`` once per frame or step, checks
``should_cancel()`` at least that often and raises :class:`kinema.errors.Cancelled`
when it returns true, and reports what it understood of the request through ``log``.
Engines are loaded by a ``module:function`` or ``/path/to/file.py:function`` spec.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

__all__ = [
    "DynamicBrush",
    "EngineInputs",
    "Progress",
    "RenderInfo",
    "Callback",
    "CancelCheck",
    "LogFn",
    "Engine",
    "load_engine",
    "OUTPUT_FPS",
    "OUTPUT_SHORT_SIDE",
    "output_size",
]

OUTPUT_FPS = 30
OUTPUT_SHORT_SIDE = 720


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
        return OUTPUT_FPS * self.duration_s


@dataclass(frozen=True)
class Progress:
    step: int  # 1-based count of frames/steps done
    total: int


@dataclass(frozen=True)
class RenderInfo:
    width: int
    height: int
    fps: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


Callback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]
LogFn = Callable[[str], None]


class Engine(Protocol):
    def __call__(
        self,
        inputs: EngineInputs,
        output: Path,
        *,
        callback: Callback,
        should_cancel: CancelCheck,
        log: LogFn,
    ) -> RenderInfo: ...


def output_size(width: int, height: int, short_side: int = OUTPUT_SHORT_SIDE) -> tuple[int, int]:
    """Output (width, height): the input's aspect ratio, short side ``short_side``, both sides even."""
    if width <= 0 or height <= 0:
        raise ValueError("image sides must be positive")
    scale = short_side / min(width, height)
    w = int(round(width * scale / 2.0)) * 2
    h = int(round(height * scale / 2.0)) * 2
    if width <= height:
        w = short_side
    else:
        h = short_side
    return max(w, 2), max(h, 2)


def load_engine(spec: str) -> Engine:
    """Import an engine from ``package.module:function`` or ``/path/to/file.py:function``."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"engine spec must look like 'module:function', got {spec!r}")
    if target.endswith(".py"):
        path = Path(target).resolve()
        name = f"kinema_engine_{abs(hash(str(path)))}"
        module = sys.modules.get(name)
        if module is None:
            # Let the file import its siblings (e.g. a shared helper beside it).
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ValueError(f"cannot load engine file {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"engine {spec!r} is not a callable")
    return fn  # type: ignore[no-any-return]
