"""Kling's motion brush on Wan, the Time-to-Move way (arXiv 2511.08633): guidance without training.

1. **Reference** (:func:`render_reference`): the motion engine's cut-and-drag render of the brush (its
   :func:`kinema.engines.motion.frames`, prompt left out so no effects are drawn) at the model's working size,
   sampled at the model's frame times, with where each moved region is in every frame and the static mask.
2. **Latent masks** (:func:`latent_masks`): frame masks → Wan's latent grid: frame 0 alone, then one latent
   frame per 4 video frames, 8x8 pixels per cell; a cell is inside when at least half of the pixels it
   covers are.
3. **Dual clock** (:class:`TimeToMove`): sampling starts at step ``tweak`` from the VAE-encoded reference
   noised to that step's level, ``x_σ = (1 − σ)·x_0 + σ·ε`` with one fixed ε; after every later step the
   latents inside the dynamic masks are overwritten with the reference noised to the next step's level until
   step ``tstrong``, inside the static mask until step ``static``; elsewhere the model denoises freely.
   :func:`start_at_step` is the hook that makes the stock pipeline begin at ``tweak``: it truncates the
   schedule the pipeline asks its scheduler for (the pipeline takes no start step or sigmas).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from kinema.engines import OUTPUT_FPS, EngineInputs
from kinema.engines.geometry import resize_mask, trajectory_to_output
from kinema.engines.motion import frames as motion_frames
from kinema.engines.motion.timing import path_offsets

from .mapping import BrushWindows

__all__ = ["Reference", "TimeToMove", "latent_masks", "render_reference", "start_at_step"]


@dataclass(frozen=True)
class Reference:
    """The cut-and-drag reference at the model's size and frame times."""

    frames: np.ndarray  # (F, H, W, 3) uint8
    dynamic: np.ndarray  # (F, H, W) bool: where the moved regions are, frame by frame
    static: np.ndarray | None  # (H, W) bool

    def segment(self, start: int, count: int) -> Reference:
        return Reference(self.frames[start : start + count], self.dynamic[start : start + count], self.static)


def _shift(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    h, w = mask.shape
    m = np.array([[1, 0, round(dx)], [0, 1, round(dy)]], dtype=np.float32)
    moved = cv2.warpAffine(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return np.asarray(moved, dtype=bool)


def render_reference(inputs: EngineInputs, size: tuple[int, int], num_frames: int, fps: float) -> Reference:
    """The motion engine's brush render at ``size``, ``num_frames`` frames at ``fps`` covering the clip.

    The motion engine renders 30 x duration frames; the model's frame ``i`` (time ``i / fps``) takes the one
    nearest in time (the last for the final frame, which falls one output frame past the clip's end).
    """
    brush_only = dataclasses.replace(inputs, prompt="", negative_prompt="", tail_image=None)
    n = brush_only.num_frames
    picks = [min(round(i * OUTPUT_FPS / fps), n - 1) for i in range(num_frames)]
    wanted: dict[int, list[int]] = {}
    for i, p in enumerate(picks):
        wanted.setdefault(p, []).append(i)
    w, h = size
    out = np.empty((num_frames, h, w, 3), dtype=np.uint8)
    made = motion_frames(brush_only, size)
    try:
        for k, frame in enumerate(made):
            for i in wanted.get(k, ()):
                out[i] = frame
            if k >= picks[-1]:
                break
    finally:
        made.close()  # type: ignore[attr-defined]
    static = resize_mask(inputs.static_mask, size) if inputs.static_mask is not None else None
    dynamic = np.zeros((num_frames, h, w), dtype=bool)
    for brush in inputs.dynamic_brushes:
        mask = resize_mask(np.asarray(brush.mask), size)
        offsets = path_offsets(trajectory_to_output(brush.trajectory, inputs.image.shape, size), n)
        for i, p in enumerate(picks):
            dynamic[i] |= _shift(mask, offsets[p, 0], offsets[p, 1])
    if static is not None:
        dynamic &= ~static  # the motion engine pastes the static region over the moved ones
    return Reference(out, dynamic, static)


def latent_masks(masks: np.ndarray, temporal: int = 4, spatial: int = 8) -> np.ndarray:
    """(F, H, W) bool frame masks → (T, H/spatial, W/spatial) bool latent masks (T = (F − 1)/temporal + 1)."""
    f, h, w = masks.shape
    cover = masks.reshape(f, h // spatial, spatial, w // spatial, spatial).mean(axis=(2, 4))
    groups = [cover[:1]] + [cover[1 + t * temporal : 1 + (t + 1) * temporal] for t in range((f - 1) // temporal)]
    return np.stack([g.mean(axis=0) for g in groups]) >= 0.5


class TimeToMove:
    """The dual clock for one segment: the start latents and the overwrite after each step.

    ``reference`` is the VAE-encoded reference, normalised like the pipeline's latents, (1, C, T, h, w);
    ``noise`` the fixed ε of the same shape; ``dynamic``/``static`` bool (T, h, w); ``sigmas`` the full
    schedule's noise levels (steps + 1 values, the last 0).
    """

    def __init__(
        self,
        reference: torch.Tensor,
        noise: torch.Tensor,
        dynamic: np.ndarray,
        static: np.ndarray | None,
        windows: BrushWindows,
        sigmas: torch.Tensor,
    ):
        self.reference = reference.float()
        self.noise = noise.float().to(reference.device)
        dev = reference.device
        self.dynamic = torch.from_numpy(dynamic)[None, None].to(dev)
        self.static = torch.from_numpy(static)[None, None].to(dev) if static is not None else None
        self.windows = windows
        self.sigmas = sigmas.float().to(dev)
        #: Steps (of the full schedule) whose incoming latents were overwritten: (step, dynamic, static).
        self.enforced: list[tuple[int, bool, bool]] = []

    def noised(self, step: int) -> torch.Tensor:
        """The reference at the noise level step ``step`` starts from."""
        s = self.sigmas[step]
        return (1.0 - s) * self.reference + s * self.noise

    def start(self) -> torch.Tensor:
        """The latents sampling starts from at step ``tweak`` (the whole reference, noised)."""
        return self.noised(self.windows.tweak)

    def after_step(self, step: int, latents: torch.Tensor) -> torch.Tensor:
        """Latents after step ``step`` (0-based, full schedule) with the held regions overwritten."""
        nxt = step + 1
        dyn = nxt < self.windows.tstrong
        sta = self.static is not None and nxt < self.windows.static
        if nxt >= self.windows.steps or not (dyn or sta):
            return latents
        hold = torch.zeros_like(self.dynamic)
        if dyn:
            hold |= self.dynamic
        if sta and self.static is not None:
            hold |= self.static
        self.enforced.append((nxt, dyn, sta))
        target = self.noised(nxt).to(device=latents.device, dtype=latents.dtype)
        return torch.where(hold.to(latents.device), target, latents)


@contextmanager
def start_at_step(scheduler: Any, step: int) -> Iterator[None]:
    """While active, the scheduler's ``set_timesteps`` keeps the schedule from ``step`` on.

    The Wan pipeline calls ``set_timesteps(num_inference_steps)`` and iterates ``scheduler.timesteps``;
    dropping the first ``step`` timesteps and sigmas makes it run steps ``step .. steps-1`` of the same
    schedule (flow-matching Euler and UniPC both index their sigmas by position in the truncated lists).
    """
    original = scheduler.set_timesteps

    def truncated(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        scheduler.timesteps = scheduler.timesteps[step:]
        scheduler.sigmas = scheduler.sigmas[step:]

    scheduler.set_timesteps = truncated
    try:
        yield
    finally:
        del scheduler.set_timesteps
