"""Pixel regions of a tail frame: row bands for the composed warp, boxes for per-pixel blending.

Both work from flags on the coarse sampling grid of ``tail.py`` (node k at output pixel
(k - 1) * grid + 0.5), so a pixel block interpolates the nodes from its own index to two beyond.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_AFFINE_BLOCKS", "STRIP_ROWS", "edge_strips", "row_bands"]

#: Camera-only row runs shorter than this many grid-row blocks are remapped with the bands around them.
MIN_AFFINE_BLOCKS = 8


def row_bands(moving: np.ndarray | None, y0: int, y1: int, grid: int) -> list[tuple[int, int, bool]]:
    """Rows ``y0:y1`` cut into runs of grid-row blocks: (start, end, reached by a ``moving`` grid node).

    Pixel rows [j grid, (j + 1) grid) interpolate grid node rows j to j + 2.
    """
    if moving is None or not moving.any():
        return [(y0, y1, False)]
    rows = np.asarray(moving.any(axis=1), bool)
    reach = rows[:-2] | rows[1:-1] | rows[2:]  # block j <- node rows j, j + 1, j + 2
    j0, j1 = y0 // grid, -(-y1 // grid)
    flags = np.zeros(j1 - j0, bool)
    known = reach[j0:j1]
    flags[: len(known)] = known
    # Camera-only runs shorter than MIN_AFFINE_BLOCKS join the composed bands around them: a remap
    # costs about what warpAffine does, and each band's map is interpolated from a margin of nodes.
    runs: list[list[int]] = []  # [first block, end block, composed]
    for k, flag in enumerate(flags.tolist()):
        if runs and runs[-1][2] == int(flag):
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, int(flag)])
    for run in runs:
        if not run[2] and run[1] - run[0] < MIN_AFFINE_BLOCKS and len(runs) > 1:
            run[2] = 1
    out: list[tuple[int, int, bool]] = []
    for a, b, flag in runs:
        ya, yb = max((j0 + a) * grid, y0), min((j0 + b) * grid, y1)
        if out and out[-1][2] == bool(flag):
            out[-1] = (out[-1][0], yb, bool(flag))
        else:
            out.append((ya, yb, bool(flag)))
    return out


#: Rows of grid-row blocks grouped into one box by ``edge_strips``.
STRIP_ROWS = 4


def edge_strips(odd: np.ndarray, grid: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    """Disjoint pixel boxes that contain every pixel an ``odd`` grid node reaches.

    Pixel block (j, i) (``grid`` x ``grid`` pixels) interpolates nodes j..j+2, i..i+2. Rows of
    blocks are taken STRIP_ROWS at a time and, in each half of the frame, boxed from their first to
    their last marked block: at most two boxes per group, so a band along the right edge of a pan
    stays a band (assigning whole sides to strips made 64 % of a pan's frame per-pixel blended).
    """
    if not odd.any():
        return []
    ny, nx = -(-h // grid), -(-w // grid)
    reach = odd[:-2] | odd[1:-1] | odd[2:]
    reach = (reach[:, :-2] | reach[:, 1:-1] | reach[:, 2:])[:ny, :nx]
    half = nx // 2
    out: list[tuple[int, int, int, int]] = []
    open_: list[tuple[int, int, int, int] | None] = [None, None]  # the box growing down in each half
    for j0 in range(0, ny, STRIP_ROWS):
        group = reach[j0 : j0 + STRIP_ROWS].any(axis=0)
        y0, y1 = j0 * grid, min((j0 + STRIP_ROWS) * grid, h)
        for k, (lo, hi) in enumerate(((0, half), (half, nx))):
            cols = np.flatnonzero(group[lo:hi])
            prev = open_[k]
            if not cols.size:
                if prev is not None:
                    out.append(prev)
                open_[k] = None
                continue
            x0, x1 = (lo + int(cols[0])) * grid, min((lo + int(cols[-1]) + 1) * grid, w)
            if prev is not None:  # grow the box above when that adds little area (fewer, larger calls)
                ux0, ux1 = min(prev[0], x0), max(prev[2], x1)
                area = (prev[2] - prev[0]) * (prev[3] - prev[1]) + (x1 - x0) * (y1 - y0)
                if (ux1 - ux0) * (y1 - prev[1]) <= 1.2 * area:
                    open_[k] = (ux0, prev[1], ux1, y1)
                    continue
                out.append(prev)
            open_[k] = (x0, y0, x1, y1)
    out.extend(b for b in open_ if b is not None)
    return out
