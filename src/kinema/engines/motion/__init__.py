"""kinema's default engine: a weight-free CPU motion engine.

``render`` is the seam entry point (``kinema.engines.motion:render``); ``frames`` is the
reusable core that yields the clip's frames without encoding them.
"""

from __future__ import annotations

from .engine import DEFAULT_SEED, frames, mode_of, render

__all__ = ["render", "frames", "mode_of", "DEFAULT_SEED"]
