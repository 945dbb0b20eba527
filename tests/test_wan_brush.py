"""The motion brush on Wan, the Time-to-Move way, observed with a spy on the latents the transformer receives.

With 6 steps and windows 1/4/5: sampling starts at step 1 from the noised reference; the latents entering
steps 2-3 equal the reference noised to that step's level inside the dynamic masks, those entering steps 2-4
inside the static mask; everywhere else (and after its window) the model's own latents differ from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the Wan engine needs the extra: pip install -e '.[diffusion]'")

import torch
from wan_fixtures import counting, load_wan, tiny_folders

from kinema.engines import DynamicBrush, EngineInputs
from kinema.engines.wan.brush import latent_masks, render_reference
from kinema.engines.wan.engine import encode_reference

STEPS, TWEAK, TSTRONG, STATIC = 6, 1, 4, 5


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random Wan I2V and FLF2V folders, written with ``save_pretrained``."""
    return tiny_folders(tmp_path_factory.mktemp("wan-models"))


@pytest.fixture(scope="module")
def engine(folders: dict[str, Path]) -> Any:
    return load_wan(
        {
            "KINEMA_WAN_MODEL": str(folders["i2v"]),
            "KINEMA_WAN_STEPS": str(STEPS),
            "KINEMA_WAN_MAX_AREA": "4096",
            "KINEMA_WAN_BRUSH_TWEAK": "0.17",
            "KINEMA_WAN_BRUSH_TSTRONG": "0.67",
            "KINEMA_WAN_BRUSH_STATIC": "0.83",
        }
    )


def test_latent_masks_follow_wans_compression() -> None:
    masks = np.zeros((9, 16, 16), dtype=bool)
    masks[0, :8, :8] = True  # frame 0 has its own latent frame
    masks[5:9, 8:16, 8:16] = True  # frames 5-8 are latent frame 2
    masks[1:3, 8:16, :8] = True  # half of latent frame 1's frames: still inside (at least half)
    masks[3, :8, 8:16] = True  # a quarter: outside
    lat = latent_masks(masks)
    want = np.zeros((3, 2, 2), dtype=bool)
    want[0, 0, 0] = want[2, 1, 1] = want[1, 1, 0] = True
    assert np.array_equal(lat, want)


def test_brush_latents_are_held_to_the_noised_reference_in_their_windows(engine: Any) -> None:
    rng = np.random.default_rng(3)
    image = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    image[8:24, 8:24] = (240, 30, 30)
    moving = np.zeros((64, 64), dtype=bool)
    moving[8:24, 8:24] = True
    still = np.zeros((64, 64), dtype=bool)
    still[48:, :] = True
    # Trajectory in input pixels, origin bottom-left: the square's centre moves 24 px to the right.
    inputs = EngineInputs(
        prompt="the red square slides right",
        image=image,
        cfg_scale=0.0,
        seed=9,
        static_mask=still,
        dynamic_brushes=(DynamicBrush(moving, ((16, 48), (40, 48))),),
    )
    pipe = engine.main.pipe
    logs: list[str] = []
    with counting(pipe.transformer, keep=True) as spy:
        frames = list(
            engine.frames(inputs, size=(64, 64), progress=lambda p: None, should_cancel=lambda: False, log=logs.append)
        )
    assert len(frames) == 81 and len(spy) == STEPS - TWEAK  # starts at step 1: 5 steps run, one call each
    assert "set_timesteps" not in vars(pipe.scheduler)  # the start-at-step hook is gone after the call
    assert any("start at step 1/6, dynamic regions held until step 4, static region until step 5" in m for m in logs)

    # What the brush should hold: the cut-and-drag reference, VAE-encoded, at the model's size and frames.
    size = engine.plan(inputs).size
    ref = render_reference(inputs, size, 81, engine.fps)
    assert size == (64, 64) and ref.dynamic[0, 8:24, 8:24].all() and ref.dynamic[-1, 8:24, 32:48].all()
    x0 = encode_reference(pipe, ref.frames)
    dyn = torch.from_numpy(latent_masks(ref.dynamic))
    sta = torch.from_numpy(latent_masks(np.ascontiguousarray(np.broadcast_to(still, ref.dynamic.shape))))
    dyn &= ~sta
    free = ~(dyn | sta)
    assert dyn.any() and sta.any() and free.any()
    sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
    sched.set_timesteps(STEPS)
    sigma = sched.sigmas.float()
    latents = {TWEAK + i: call["hidden_states"][:, :16].float() for i, call in enumerate(spy.calls)}
    # The start is the reference noised to step 1's level everywhere: that fixes each cell's noise.
    eps = (latents[TWEAK] - (1 - sigma[TWEAK]) * x0) / sigma[TWEAK]

    def noised(step: int) -> torch.Tensor:
        return (1 - sigma[step]) * x0 + sigma[step] * eps

    def gap(step: int, where: torch.Tensor) -> float:
        region = where[None, None].expand_as(x0)
        return float((latents[step] - noised(step))[region].abs().max())

    for step in range(TWEAK + 1, TSTRONG):  # dynamic regions held
        assert gap(step, dyn) < 1e-4, step
    for step in range(TWEAK + 1, STATIC):  # the static region held longer
        assert gap(step, sta) < 1e-4, step
    assert gap(TSTRONG, dyn) > 1e-2  # after tstrong the moving regions denoise freely
    assert gap(STATIC, sta) > 1e-2  # after its window the static region too
    for step in range(TWEAK + 1, STEPS):  # outside the masks the latents were never overwritten
        assert gap(step, free) > 1e-2, step


def test_a_10_s_brush_clip_guides_both_segments(engine: Any) -> None:
    image = (np.random.default_rng(4).random((64, 64, 3)) * 255).astype(np.uint8)
    moving = np.zeros((64, 64), dtype=bool)
    moving[24:40, 8:24] = True
    inputs = EngineInputs(
        prompt="p",
        image=image,
        duration_s=10,
        cfg_scale=0.0,
        seed=2,
        dynamic_brushes=(DynamicBrush(moving, ((16, 32), (56, 32))),),
    )
    logs: list[str] = []
    with counting(engine.main.pipe.transformer) as calls:
        frames = list(
            engine.frames(inputs, size=(64, 64), progress=lambda p: None, should_cancel=lambda: False, log=logs.append)
        )
    assert len(frames) == 161 and len(calls) == 2 * (STEPS - TWEAK)
    assert sum("brush reference encoded" in m for m in logs) == 2
