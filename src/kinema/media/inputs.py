"""From a validated request to :class:`~kinema.engines.EngineInputs`: fetch, decode, check.

This is the half of validation that needs the files (fal completes such a request with a 422
body as its result). Every problem found is reported, each under its own ``loc``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from kinema.engines import DynamicBrush, EngineInputs
from kinema.errors import InputError, error_item
from kinema.media.images import (
    check_input_image,
    check_input_size,
    check_mask_shapes,
    check_mask_size,
    decode_image,
    decode_mask,
    full_mask_warning,
    probe_size,
)
from kinema.schema import KlingInput

__all__ = ["load_inputs", "FetchFn", "WarnFn"]

Loc = Sequence[str | int]
FetchFn = Callable[[str, Loc], bytes]
#: Receives warnings about accepted inputs (a mask that selects every pixel); the worker writes them to the job log.
WarnFn = Callable[[str], None]

_log = logging.getLogger("kinema.inputs")


def load_inputs(req: KlingInput, fetch: FetchFn, *, max_pixels: int, warn: WarnFn | None = None) -> EngineInputs:
    errors: list[dict[str, Any]] = []
    notes: list[str] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except InputError as exc:
            errors.extend(exc.errors)
            return None

    # Sides and aspect are judged from the header before any pixel is decoded.
    def image_at(url: str, loc: Loc) -> np.ndarray:
        data = fetch(url, loc)
        check_input_size(*probe_size(data, loc, max_pixels=max_pixels), loc)
        img = decode_image(data, loc, max_pixels=max_pixels)
        check_input_image(img, loc)
        return img

    def mask_at(url: str, loc: Loc) -> np.ndarray:
        data = fetch(url, loc)
        check_mask_size(*probe_size(data, loc, max_pixels=max_pixels), loc)
        return decode_mask(data, loc, max_pixels=max_pixels)

    # 1. The image and the tail image.
    image = attempt(lambda: image_at(req.image_url, ["body", "image_url"]))
    tail = None
    if req.tail_image_url is not None:
        tail = attempt(lambda: image_at(req.tail_image_url, ["body", "tail_image_url"]))  # type: ignore[arg-type]

    # 2. The masks.
    static = None
    if req.static_mask_url is not None:
        static = attempt(lambda: mask_at(req.static_mask_url, ["body", "static_mask_url"]))  # type: ignore[arg-type]
    dynamic: list[tuple[np.ndarray | None, list[tuple[int, int]]]] = []
    for i, dm in enumerate(req.dynamic_masks or []):
        loc: Loc = ["body", "dynamic_masks", i, "mask_url"]
        mask = attempt(partial(mask_at, dm.mask_url, loc))
        dynamic.append((mask, [(p.x, p.y) for p in dm.trajectories or []]))

    # 3. Checks that need the decoded files: mask shapes, trajectory points inside the image.
    if image is not None:
        h, w = image.shape[:2]
        named: list[tuple[Loc, np.ndarray]] = []
        if static is not None:
            named.append((["body", "static_mask_url"], static))
        for i, (mask, _) in enumerate(dynamic):
            if mask is not None:
                named.append((["body", "dynamic_masks", i, "mask_url"], mask))
        attempt(lambda: check_mask_shapes((w, h), named))
        notes = [n for n in (full_mask_warning(loc, m) for loc, m in named) if n is not None]
        for i, (_, points) in enumerate(dynamic):
            for j, (x, y) in enumerate(points):
                if not (0 <= x < w and 0 <= y < h):
                    errors.append(
                        error_item(
                            ["body", "dynamic_masks", i, "trajectories", j],
                            f"point ({x}, {y}) is outside the {w}x{h} image: x must be 0..{w - 1} and y 0..{h - 1} "
                            "(pixels of the input image, origin at the bottom-left corner)",
                            "trajectory_point_outside",
                        )
                    )
    if errors:
        raise InputError(errors)
    for note in notes:  # only for a request that is accepted
        (warn or _log.warning)(note)

    # 4. Assemble what the engine sees.
    assert image is not None
    return EngineInputs(
        prompt=req.prompt,
        image=image,
        duration_s=int(req.duration),
        negative_prompt=req.negative_prompt or "",
        cfg_scale=float(req.cfg_scale),
        tail_image=tail,
        static_mask=static,
        dynamic_brushes=tuple(DynamicBrush(mask=m, trajectory=tuple(pts)) for m, pts in dynamic if m is not None),
        seed=req.seed,
    )
