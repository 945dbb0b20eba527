"""The Wan engine: one loaded pipeline (two with an FLF folder for tail requests), frames per request.

A request becomes one 5 s segment per 5 s of clip (81 frames at 16 fps, 121 at 24 fps); a later segment starts
from the previous one's last decoded frame and yields its frames after that one, so a 10 s clip at 16 fps is
81 + 80 = 161 frames, exactly what the output contract's rate conversion needs for 300 frames at 30 fps.
Each segment is the stock ``WanImageToVideoPipeline`` call with ``output_type="latent"`` and a step callback
(progress, cancel, the motion brush's overwrite), then the VAE decode done here so that its time is reported
apart.
"""

from __future__ import annotations

import gc
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.utils.torch_utils import get_module_execution_device
from PIL import Image

from kinema.engines import CancelCheck, EngineInputs, LogFn, Progress, ProgressFn
from kinema.engines.geometry import resize_image
from kinema.errors import Cancelled, InputError

from .brush import Reference, TimeToMove, latent_masks, render_reference, start_at_step
from .config import WanSettings
from .folder import ModelInfo
from .loading import Loaded, load_pipeline
from .mapping import BrushWindows, brush_windows, guidance_for, segment_frames, segments_for, working_size

__all__ = ["Plan", "WanEngine"]

_log = logging.getLogger("kinema.engines.wan")


@dataclass(frozen=True)
class Plan:
    """What one request runs: every choice the mapping made, logged before the first step."""

    size: tuple[int, int]
    segment_frames: int
    segments: int
    steps: int
    guidance: float
    seed: int
    prompt: str
    negative_prompt: str
    tail: bool
    windows: BrushWindows | None

    @property
    def steps_per_segment(self) -> int:
        return self.steps - (self.windows.tweak if self.windows is not None else 0)


class WanEngine:
    """The engine seam's object for Wan (see :mod:`kinema.engines`)."""

    def __init__(self, settings: WanSettings, main: Loaded, flf: Loaded | None, device: str):
        self.settings = settings
        self.main = main
        self.flf = flf
        self.device = device
        self._cuda = torch.device(device).type == "cuda"

    @classmethod
    def load(cls, settings: WanSettings, main: ModelInfo, flf: ModelInfo | None, device: str) -> WanEngine:
        def say(message: str) -> None:
            _log.info("%s", message)

        loaded = load_pipeline(main, settings, device, say)
        second = load_pipeline(flf, settings, device, say, share_with=loaded) if flf is not None else None
        return cls(settings, loaded, second, device)

    @property
    def fps(self) -> float:
        return self.main.info.fps

    # -- Mapping ------------------------------------------------------------------------------
    def plan(self, inputs: EngineInputs) -> Plan:
        """The request's run, or an :class:`InputError` (422) for what this server's models cannot do."""
        tail = inputs.tail_image is not None
        brush = inputs.static_mask is not None or bool(inputs.dynamic_brushes)
        if tail and self._tail_pipe() is None:
            raise InputError.single(
                ["body", "tail_image_url"],
                f"this server's model ({self.main.info.variant}) cannot use a tail image: its transformer has "
                "no position embedding for a second image; the operator can configure an FLF-capable folder "
                "(KINEMA_WAN_FLF_MODEL, e.g. Wan 2.1 FLF2V)",
                "tail_image_unsupported",
            )
        if tail and brush:
            raise InputError.single(
                ["body", "tail_image_url"], "a tail image cannot be combined with the motion brush", "value_error"
            )
        info = self.main.info
        h, w = inputs.image.shape[:2]
        size = working_size(w, h, self.settings.max_area, info.multiple)
        steps = self.settings.steps
        windows = None
        if brush:
            s = self.settings
            windows = brush_windows(steps, s.brush_tweak, s.brush_tstrong, s.brush_static)
        default = self.settings.guidance if self.settings.guidance is not None else info.default_guidance
        return Plan(
            size=size,
            segment_frames=segment_frames(self.fps),
            segments=segments_for(inputs.duration_s),
            steps=steps,
            guidance=guidance_for(inputs.cfg_scale, default, no_cfg=self.settings.no_cfg),
            seed=int(inputs.seed) if inputs.seed is not None else secrets.randbelow(2**31),
            prompt=inputs.prompt,
            negative_prompt=inputs.negative_prompt.strip() or self.settings.negative_prompt,
            tail=tail,
            windows=windows,
        )

    def _tail_pipe(self) -> Loaded | None:
        if self.main.info.tail:
            return self.main
        return self.flf

    # -- The seam -------------------------------------------------------------------------------
    def frames(
        self,
        inputs: EngineInputs,
        *,
        size: tuple[int, int],
        progress: ProgressFn,
        should_cancel: CancelCheck,
        log: LogFn,
    ) -> Iterator[np.ndarray]:
        plan = self.plan(inputs)  # before the generator: a 422 is raised at the call
        return self._frames(inputs, plan, progress=progress, should_cancel=should_cancel, log=log)

    def _frames(
        self, inputs: EngineInputs, plan: Plan, *, progress: ProgressFn, should_cancel: CancelCheck, log: LogFn
    ) -> Iterator[np.ndarray]:
        info = self.main.info
        w, h = plan.size
        log(
            f"wan: {info.variant} ({info.path.name}), {self.settings.dtype} on {self.device}, {plan.steps} steps, "
            f"guidance {plan.guidance:g}{' (LoRA without CFG)' if self.settings.no_cfg else ''}, {w}x{h}, "
            f"{plan.segments} x {plan.segment_frames} frames at {self.fps:g} fps, seed {plan.seed}"
        )
        if plan.windows is not None:
            log(plan.windows.describe())
        if self._cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        generator = torch.Generator(device="cpu").manual_seed(plan.seed)
        reference: Reference | None = None
        if plan.windows is not None:
            t0 = time.monotonic()
            total = (plan.segment_frames - 1) * plan.segments + 1
            reference = render_reference(inputs, plan.size, total, self.fps)
            log(f"brush reference: {total} frames rendered in {time.monotonic() - t0:.2f} s")
        done = 0
        total_steps = plan.steps_per_segment * plan.segments
        cond = resize_image(inputs.image, plan.size)
        tail = resize_image(inputs.tail_image, plan.size) if inputs.tail_image is not None else None
        finished = False
        try:
            for seg in range(plan.segments):
                last = tail if seg == plan.segments - 1 else None
                loaded = self._tail_pipe() if last is not None else self.main
                assert loaded is not None  # plan() refused tails without a tail-capable model
                ref = (
                    None
                    if reference is None
                    else reference.segment(seg * (plan.segment_frames - 1), plan.segment_frames)
                )
                t0 = time.monotonic()
                first: list[float] = []  # when the first transformer block ran (text and image encoded)
                latents = self._denoise(
                    loaded,
                    plan,
                    cond,
                    last,
                    ref,
                    generator,
                    seg,
                    done,
                    total_steps,
                    progress,
                    should_cancel,
                    log,
                    first,
                )
                t1 = time.monotonic()
                prepared = f"encode {first[0] - t0:.2f} s, " if first else ""
                done += plan.steps_per_segment
                if should_cancel():
                    raise Cancelled(f"cancelled after segment {seg + 1} of {plan.segments}")
                video = decode(loaded.pipe, latents)
                del latents
                t2 = time.monotonic()
                progress(Progress(seg + 1, plan.segments, "decode"))
                log(
                    f"segment {seg + 1}/{plan.segments} ({loaded.info.variant}): {prepared}"
                    f"{plan.steps_per_segment} steps {t1 - (first[0] if first else t0):.2f} s "
                    f"({(t1 - (first[0] if first else t0)) / max(plan.steps_per_segment, 1):.3f} s/step), "
                    f"decode {t2 - t1:.2f} s"
                )
                yield from (video if seg == 0 else video[1:])
                cond = video[-1]
            if self._cuda:
                peak = torch.cuda.max_memory_allocated(self.device) / 2**30
                log(f"peak GPU memory {peak:.2f} GiB")
            finished = True
        finally:
            self._release(collect=not finished)

    def _denoise(
        self,
        loaded: Loaded,
        plan: Plan,
        cond: np.ndarray,
        last: np.ndarray | None,
        ref: Reference | None,
        generator: torch.Generator,
        seg: int,
        done: int,
        total: int,
        progress: ProgressFn,
        should_cancel: CancelCheck,
        log: LogFn,
        first: list[float],
    ) -> torch.Tensor:
        pipe = loaded.pipe
        w, h = plan.size
        ttm: TimeToMove | None = None
        if ref is not None and plan.windows is not None:
            t0 = time.monotonic()
            ttm = brush_guide(pipe, ref, plan.windows, generator, self.settings)
            log(f"segment {seg + 1}: brush reference encoded in {time.monotonic() - t0:.2f} s")
        offset = plan.windows.tweak if ttm is not None and plan.windows is not None else 0

        stepped = [0]  # steps of this segment done

        def on_step_end(_pipe: Any, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if should_cancel():  # raise, not _interrupt: an interrupted pipeline would still decode
                raise Cancelled(f"cancelled at step {done + i + 1} of {total}")
            if ttm is not None:
                kwargs["latents"] = ttm.after_step(offset + i, kwargs["latents"])
            stepped[0] = i + 1
            progress(Progress(done + i + 1, total, "step"))
            return kwargs

        call: dict[str, Any] = {
            "image": Image.fromarray(cond),
            "prompt": plan.prompt,
            "negative_prompt": plan.negative_prompt,
            "height": h,
            "width": w,
            "num_frames": plan.segment_frames,
            "num_inference_steps": plan.steps,
            "guidance_scale": plan.guidance,
            "generator": generator,
            "output_type": "latent",
            "callback_on_step_end": on_step_end,
            "callback_on_step_end_tensor_inputs": ["latents"],
        }
        if last is not None:
            call["last_image"] = Image.fromarray(last)
        two_slots = last is None and loaded.info.needs_two_images
        with (
            self._cancel_between_blocks(loaded, should_cancel, lambda: done + stepped[0] + 1, first),
            _image_in_both_slots(pipe, two_slots),
        ):
            if ttm is None:
                latents: torch.Tensor = pipe(**call).frames
                return latents
            call["latents"] = ttm.start()
            with start_at_step(pipe.scheduler, offset):
                latents = pipe(**call).frames
            return latents

    @contextmanager
    def _cancel_between_blocks(
        self, loaded: Loaded, should_cancel: CancelCheck, step: Callable[[], int], first: list[float]
    ) -> Iterator[None]:
        """Cancel checks before every transformer block too: a 14B step takes seconds (longer than the core's
        default cancel grace of 5 s), a block a fraction of that. Not with ``torch.compile`` (a Python check inside
        compiled blocks would break their graphs)."""
        if self.settings.compile:
            yield
            return

        def check(_module: Any, _args: Any) -> None:
            if not first:
                first.append(time.monotonic())
            if should_cancel():
                raise Cancelled(f"cancelled during step {step()}")

        experts = [m for m in (loaded.pipe.transformer, getattr(loaded.pipe, "transformer_2", None)) if m is not None]
        handles = [block.register_forward_pre_hook(check) for m in experts for block in getattr(m, "blocks", ())]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _release(self, *, collect: bool) -> None:
        """After a request: offload hooks reset, the CUDA cache emptied; after a failure or cancel also a
        garbage collection, for tensors held by the exception's frames (0.33 s measured on the tiny model's
        process, so not after every clip: a finished request's tensors are freed by reference counting)."""
        for loaded in (self.main, self.flf):
            if loaded is not None:
                loaded.pipe.maybe_free_model_hooks()
        if collect:
            gc.collect()
        if self._cuda:
            torch.cuda.empty_cache()


@contextmanager
def _image_in_both_slots(pipe: Any, active: bool) -> Iterator[None]:
    """An FLF2V transformer without a tail image: the image encoder encodes the image for both of its slots.

    The pipeline refuses ``image_embeds`` next to ``image``, so its ``encode_image`` is wrapped for the call.
    """
    if not active:
        yield
        return
    original = pipe.encode_image

    def both(image: Any, device: Any = None) -> Any:
        return original([image, image], device)

    pipe.encode_image = both
    try:
        yield
    finally:
        del pipe.encode_image


def _latent_stats(vae: Any, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(device, dtype)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(device, dtype)
    return mean, inv_std


@torch.no_grad()
def decode(pipe: Any, latents: torch.Tensor) -> np.ndarray:
    """The segment's frames, (F, H, W, 3) uint8, decoded as the stock pipeline decodes them."""
    vae = pipe.vae
    latents = latents.to(device=get_module_execution_device(vae), dtype=vae.dtype)
    mean, inv_std = _latent_stats(vae, latents.device, latents.dtype)
    video = vae.decode(latents / inv_std + mean, return_dict=False)[0]
    frames = pipe.video_processor.postprocess_video(video, output_type="np")[0]
    out: np.ndarray = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
    return out


@torch.no_grad()
def encode_reference(pipe: Any, frames: np.ndarray) -> torch.Tensor:
    """VAE latents of ``frames`` ((F, H, W, 3) uint8), normalised as the pipeline normalises its condition."""
    vae = pipe.vae
    device = get_module_execution_device(vae)
    video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].to(device=device, dtype=torch.float32)
    video = (video / 127.5 - 1.0).to(vae.dtype)
    latents: torch.Tensor = vae.encode(video).latent_dist.mode().float()
    mean, inv_std = _latent_stats(vae, latents.device, latents.dtype)
    normalised: torch.Tensor = (latents - mean) * inv_std
    return normalised


def brush_guide(
    pipe: Any, ref: Reference, windows: BrushWindows, generator: torch.Generator, settings: WanSettings
) -> TimeToMove:
    """The segment's :class:`TimeToMove`: reference latents, fixed noise, latent masks, the schedule's sigmas."""
    x0 = encode_reference(pipe, ref.frames)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32)
    temporal, spatial = pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial
    dynamic = latent_masks(ref.dynamic, temporal, spatial)
    static = None
    if ref.static is not None:  # a cell in both is held as static (for longer), as the reference pastes it last
        still = np.broadcast_to(ref.static, ref.dynamic.shape)
        static = latent_masks(np.ascontiguousarray(still), temporal, spatial)
        dynamic &= ~static
    pipe.scheduler.set_timesteps(settings.steps, device=x0.device)
    sigmas = pipe.scheduler.sigmas.clone()
    return TimeToMove(x0, noise, dynamic, static, windows, sigmas)
