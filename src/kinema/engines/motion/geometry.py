"""Resizing inputs to the output frame and converting trajectory coordinates.

These helpers serve every engine and live in :mod:`kinema.engines.geometry`; this module keeps
the motion engine's imports working.
"""

from __future__ import annotations

from kinema.engines.geometry import (
    bbox,
    fit_image,
    resize_image,
    resize_mask,
    trajectory_to_output,
)

__all__ = ["bbox", "fit_image", "resize_image", "resize_mask", "trajectory_to_output"]
