"""The motion engine's two entry points: ``frames`` builds the clip, ``render`` encodes it.

Three modes, chosen by the inputs:

- **tail**: a tail image is given; the view moves from the image to the tail (a camera move plus
  residual optical flow, ``tail.py``).
- **brush**: a static mask and/or dynamic masks are given; regions move as layers (``brush.py``).
- **prompt**: otherwise; the prompt picks a camera move (``camera.py``).

Prompt effects (``effects.py``) apply in prompt and brush modes, never over the static region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

from kinema.engines import (
    OUTPUT_FPS,
    Callback,
    CancelCheck,
    EngineInputs,
    LogFn,
    Progress,
    RenderInfo,
    output_size,
)

from .brush import BrushScene
from .camera import CameraScene
from .camera import plan as plan_camera
from .effects import EffectStack
from .geometry import fit_image, resize_image, resize_mask, trajectory_to_output
from .tail import TailScene
from .timing import clip_time, ease, fade_in, path_offsets
from .vocabulary import DEFAULT_MOVE, DEFAULT_MOVE_STRENGTH, Understanding, understand

__all__ = ["frames", "render", "mode_of", "DEFAULT_SEED"]

#: Seed of the stochastic effects when the request gives none.
DEFAULT_SEED = 0


def mode_of(inputs: EngineInputs) -> str:
    """The mode the inputs select: "tail", "brush" or "prompt"."""
    brush = inputs.static_mask is not None or bool(inputs.dynamic_brushes)
    if inputs.tail_image is not None and brush:
        raise ValueError("a tail image cannot be combined with the motion brush")
    return "tail" if inputs.tail_image is not None else "brush" if brush else "prompt"


def frames(
    inputs: EngineInputs, size: tuple[int, int] | None = None, *, log: LogFn | None = None
) -> Iterator[np.ndarray]:
    """Yield the ``inputs.num_frames`` RGB uint8 frames of the clip, one at a time.

    ``size`` (w, h) defaults to :func:`kinema.engines.output_size` of the image. Frame 0 is the
    image resized; in tail mode the last frame is the tail image fitted (resized, centre-cropped
    first when its aspect ratio differs).
    """
    say: LogFn = log if log is not None else (lambda _msg: None)
    # 1. Check inputs
    image = np.asarray(inputs.image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    for k, brush in enumerate(inputs.dynamic_brushes):
        if np.asarray(brush.mask).ndim != 2 or len(brush.trajectory) < 1:
            raise ValueError(f"dynamic brush {k} needs a 2-D mask and at least one trajectory point")
    mode = mode_of(inputs)
    n = inputs.num_frames
    size = size or output_size(image.shape[1], image.shape[0])
    seed = DEFAULT_SEED if inputs.seed is None else int(inputs.seed)

    # 2. Prepare the first frame and what the prompt asks for
    base = resize_image(image, size)
    told = understand(inputs.prompt, inputs.negative_prompt, inputs.cfg_scale)
    progress = ease(clip_time(n))
    say(f"motion engine: {mode} mode, {size[0]}x{size[1]}, {n} frames at {OUTPUT_FPS} fps")

    # 3. Build the scene of the mode: frame(i) -> uint8 frame
    if mode == "tail":
        say("prompt not applied: the tail image fixes the motion")
        last, cropped = fit_image(np.asarray(inputs.tail_image), size)
        if cropped:
            say(f"tail image {cropped}")
        tail = TailScene(base, last)
        say(tail.describe())
        build: Callable[[int], np.ndarray] = partial(_at_progress, tail.frame, progress)
        effects = EffectStack([], size, seed)
        finish: Callable[[np.ndarray], None] | None = None
    elif mode == "brush":
        static = resize_mask(inputs.static_mask, size) if inputs.static_mask is not None else None
        masks = [resize_mask(b.mask, size) for b in inputs.dynamic_brushes]
        offsets = [
            path_offsets(trajectory_to_output(b.trajectory, image.shape, size), n) for b in inputs.dynamic_brushes
        ]
        scene = BrushScene(base, static, masks, offsets)
        say(
            f"brush: {len(scene.layers)} moving region(s), {scene.refined} refined to the object's edges"
            + (", static region kept" if static is not None else "")
        )
        effects = _effects(told, size, seed, say, camera_applies=False)
        build, finish = scene.frame, scene.paste_static
    else:
        camera_plan = plan_camera(_camera_phases(told), n, size, seed=seed, fps=OUTPUT_FPS)
        camera = CameraScene(base, camera_plan)
        effects = _effects(told, size, seed, say, camera_applies=True)
        effects.follow(camera_plan.content_shift(size))  # near flakes sweep past faster (parallax)
        for note in camera_plan.notes:
            say(f"camera: {note}")
        build, finish = camera.frame, None

    # 4. Yield frames: effects fade in from zero, the static region is pasted last
    opacity = np.sqrt(told.strength) * fade_in(np.arange(n), OUTPUT_FPS)
    for i in range(n):
        frame = build(i)
        if effects and opacity[i] > 0:
            effects.apply(frame, i, float(opacity[i]))
            if finish is not None:
                finish(frame)
        yield frame


def _at_progress(frame_at: Callable[[float], np.ndarray], progress: np.ndarray, i: int) -> np.ndarray:
    return frame_at(float(progress[i]))


def _camera_phases(told: Understanding) -> list[list[tuple[str, float]]]:
    """(family, amount) of each phase: amount = cfg_scale x intensity (x the default move's weight)."""
    if told.still or told.strength <= 0:
        return []
    if told.default_move:
        return [[(DEFAULT_MOVE, told.strength * DEFAULT_MOVE_STRENGTH)]]
    return [[(m.family, told.strength * m.intensity) for m in phase] for phase in told.phases]


def _effects(told: Understanding, size: tuple[int, int], seed: int, say: LogFn, *, camera_applies: bool) -> EffectStack:
    say(told.describe(camera=camera_applies))
    for line in told.limits() if camera_applies else ():  # in brush mode the brush moves the subject
        say(line)
    chosen = told.effects if told.strength > 0 else ()
    if chosen:
        say(f"effects seed {seed}")
    return EffectStack([e.name for e in chosen], size, seed, intensity={e.name: e.intensity for e in chosen})


def render(
    inputs: EngineInputs, output: Path, *, callback: Callback, should_cancel: CancelCheck, log: LogFn
) -> RenderInfo:
    """Render ``inputs`` to an H.264 MP4 at ``output`` (the old per-job entry point).

    The clip is made the way a worker makes it: :class:`kinema.pipeline.Pipeline` with the default
    settings (engine frames on a background thread, the output contract, the encoder). ``callback``
    gets ``Progress(i, n)`` as frame ``i`` of ``n`` is encoded.
    """
    # Imported here: the pipeline imports this package.
    from kinema.pipeline import Pipeline
    from kinema.settings import Settings

    from . import MotionEngine

    def progress(p: Progress) -> None:
        if p.stage == "encode":
            callback(Progress(p.step, p.total))

    clip = Pipeline(Settings(), MotionEngine()).render(
        inputs, output, progress=progress, should_cancel=should_cancel, log=log
    )
    return RenderInfo(width=clip.width, height=clip.height, fps=clip.fps, frames=clip.frames)
